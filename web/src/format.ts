// Small formatting helpers: durations, clock times, names of actors and states.
import { ScreenState, type Actor } from "./gen/household/v1/common_pb.js";
import type { Event } from "./gen/household/v1/event_pb.js";

export function duration(seconds: number | bigint): string {
  let s = Math.max(0, Math.round(Number(seconds)));
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  if (h > 0) return m > 0 ? `${h} h ${m} min` : `${h} h`;
  return `${m} min`;
}

/** "2h 15m", "45m": short enough for the middle of the ring. */
export function shortDuration(seconds: number | bigint): string {
  const m = Math.floor(Math.max(0, Number(seconds)) / 60);
  const h = Math.floor(m / 60);
  return h > 0 ? `${h}h ${String(m % 60).padStart(2, "0")}m` : `${m}m`;
}

export function minutesLabel(min: number): string {
  return min % 60 === 0 ? `${min / 60} h` : `${min} min`;
}

const clockFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: "short" });

export function clock(micros: bigint): string {
  return clockFmt.format(new Date(Number(micros / 1000n)));
}

export function weekday(d: Date): string {
  return dayFmt.format(d);
}

export const STATE_LABEL: Record<ScreenState, string> = {
  [ScreenState.UNSPECIFIED]: "Unknown",
  [ScreenState.ACTIVE]: "Has time",
  [ScreenState.WARNING]: "Almost out",
  [ScreenState.GRACE]: "Out of time (grace)",
  [ScreenState.BLOCKED]: "Out of time",
  [ScreenState.LOCKED]: "Locked",
  [ScreenState.DOWNTIME]: "Downtime",
};

export const STATE_CLASS: Record<ScreenState, string> = {
  [ScreenState.UNSPECIFIED]: "s-off",
  [ScreenState.ACTIVE]: "s-ok",
  [ScreenState.WARNING]: "s-warn",
  [ScreenState.GRACE]: "s-warn",
  [ScreenState.BLOCKED]: "s-stop",
  [ScreenState.LOCKED]: "s-stop",
  [ScreenState.DOWNTIME]: "s-off",
};

export function actorName(
  a: Actor | undefined,
  guardians: Map<string, { displayName: string }>,
  devices: Map<string, { displayName: string }>,
  ownCredential: string,
): string {
  if (!a) return "Someone";
  const k = a.kind;
  switch (k.case) {
    case "guardianId": {
      const name = guardians.get(k.value)?.displayName ?? k.value;
      return a.credentialId && a.credentialId === ownCredential ? `${name} (this phone)` : name;
    }
    case "deviceId":
      return devices.get(k.value)?.displayName ?? k.value;
    case "legacyAddress":
      return `CST app at ${k.value}`;
    case "system":
      return "The hub";
    default:
      return "Someone";
  }
}

/** "added 30 min for Mia", "locked Mia", … for the who-did-what list. */
/** Today's date in the IANA time zone `tz` (the policy's), for a date exception. */
export function todayIn(tz: string): { year: number; month: number; day: number } {
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone: tz || undefined,
    year: "numeric",
    month: "numeric",
    day: "numeric",
  }).formatToParts(new Date());
  const part = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  return { year: part("year"), month: part("month"), day: part("day") };
}

export function describeAction(e: Event, childName: string): string {
  const p = e.payload;
  switch (p.case) {
    case "timeGranted":
      return `added ${minutesLabel(p.value.minutes)} for ${childName}`;
    case "locked":
      return p.value.untilUnixMicros !== undefined
        ? `locked ${childName} until ${clock(p.value.untilUnixMicros)}`
        : `locked ${childName}`;
    case "unlocked":
      return p.value.untilUnixMicros !== undefined
        ? `unlocked ${childName} until ${clock(p.value.untilUnixMicros)}`
        : `unlocked ${childName}`;
    case "requestResolved":
      return p.value.grantedMinutes > 0
        ? `approved ${minutesLabel(p.value.grantedMinutes)} for ${childName}`
        : `said no to ${childName}'s request`;
    case "policyChanged":
      return `changed ${childName}'s rules`;
    default:
      return "did something";
  }
}

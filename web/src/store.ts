// The household as this phone knows it, kept current by one Watch stream. The stream
// is resumed after the last seq seen when it drops or the phone wakes up, so nothing
// is missed and nothing is refetched that need not be.
import { household, Code, ConnectError } from "./api.js";
import type { ChildStatus, NetworkDevice } from "./gen/household/v1/guardian_pb.js";
import type { Child, Device, Guardian, TimeRequest } from "./gen/household/v1/common_pb.js";
import { TimeRequestSchema, TimeRequestStatus } from "./gen/household/v1/common_pb.js";
import { create } from "@bufbuild/protobuf";
import { EventKind, type Event } from "./gen/household/v1/event_pb.js";

export type Link = "connecting" | "live" | "offline" | "revoked";

export interface State {
  link: Link;
  children: Child[];
  statuses: Map<string, ChildStatus>;
  devices: Map<string, Device>;
  guardians: Map<string, Guardian>;
  pending: Map<string, TimeRequest>;
  /** Guardian actions, newest first. */
  activity: Event[];
  lastSeq: bigint | undefined;
  /** Child agents heard on the home network that belong to no household, by key. */
  network: Map<string, NetworkDevice>;
  /** The seq of the last event that enrolled or revoked a credential. */
  credentialsSeq: bigint;
}

export const state: State = {
  link: "connecting",
  children: [],
  statuses: new Map(),
  devices: new Map(),
  guardians: new Map(),
  pending: new Map(),
  activity: [],
  lastSeq: undefined,
  credentialsSeq: 0n,
  network: new Map(),
};

/** Keeps an agent heard on the network if it belongs to no household yet. */
function heard(d: NetworkDevice | undefined): void {
  if (!d) return;
  if (d.householdId === "") state.network.set(d.keySha256Hex, d);
  else state.network.delete(d.keySha256Hex);
}

/** The agents heard so far (the Watch then tells of changes as they happen). */
async function loadNetwork(): Promise<void> {
  try {
    const res = await household.listDevices({});
    state.network = new Map();
    for (const d of res.networkDevices) heard(d);
    onChange();
  } catch {
    // A nicety like the history: the live items still arrive.
  }
}

const ACTIVITY_KINDS: Event["payload"]["case"][] = [
  "timeGranted",
  "locked",
  "unlocked",
  "requestResolved",
  "policyChanged",
];
const ACTIVITY_MAX = 30;

let onChange: () => void = () => {};
export function subscribe(f: () => void): void {
  onChange = f;
}

function seen(seq: bigint): void {
  if (state.lastSeq === undefined || seq > state.lastSeq) state.lastSeq = seq;
}

function addActivity(e: Event): void {
  if (!ACTIVITY_KINDS.includes(e.payload.case)) return;
  // A new child's first policy is part of adding the child, not a change of rules.
  if (e.payload.case === "policyChanged" && e.payload.value.previousRevision === 0n) return;
  if (state.activity.some((a) => a.seq === e.seq)) return;
  state.activity.unshift(e);
  state.activity.sort((a, b) => (a.seq < b.seq ? 1 : -1));
  state.activity.length = Math.min(state.activity.length, ACTIVITY_MAX);
}

function apply(e: Event): void {
  seen(e.seq);
  const p = e.payload;
  switch (p.case) {
    case "timeRequested":
      state.pending.set(
        p.value.requestId,
        create(TimeRequestSchema, {
          requestId: p.value.requestId,
        childId: e.childId,
        deviceId: e.deviceId,
        minutes: p.value.minutes,
        note: p.value.note,
        requestedUnixMicros: p.value.requestedUnixMicros,
        day: p.value.day,
          status: TimeRequestStatus.PENDING,
        }),
      );
      break;
    case "requestResolved":
      state.pending.delete(p.value.requestId);
      break;
    case "deviceOnline":
    case "deviceOffline": {
      const d = state.devices.get(e.deviceId);
      if (d) d.online = p.case === "deviceOnline";
      break;
    }
    case "deviceAdded":
    case "childAdded":
    case "childRemoved":
    case "childRenamed":
    case "deviceRemoved":
    case "deviceRenamed":
    case "guardianEnrolled":
      // Rare changes to who exists: a fresh snapshot is simplest and always right.
      needSnapshot = true;
      state.credentialsSeq = e.seq;
      break;
    case "identityRevoked":
      state.credentialsSeq = e.seq;
      break;
  }
  addActivity(e);
}

/** Fills "who did what" with today's guardian actions after a fresh snapshot. */
async function loadRecentActivity(): Promise<void> {
  const start = BigInt(Date.now() - 24 * 3600 * 1000) * 1000n;
  try {
    const res = await household.getHistory({
      startUnixMicros: start,
      kinds: [
        EventKind.TIME_GRANTED,
        EventKind.LOCKED,
        EventKind.UNLOCKED,
        EventKind.REQUEST_RESOLVED,
        EventKind.POLICY_CHANGED,
      ],
      pageSize: 1000,
    });
    for (const e of res.events) addActivity(e);
    onChange();
  } catch {
    // History is a nicety; the live stream goes on without it.
  }
}

let needSnapshot = false;
let controller: AbortController | null = null;
let lastMessageAt = 0;
const STALE_MS = 40_000; // the hub sends a heartbeat after 15 s of quiet

/** Follows one Watch stream; true when it was left for a fresh snapshot. */
async function watchOnce(signal: AbortSignal): Promise<boolean> {
  const resume = needSnapshot ? undefined : state.lastSeq;
  needSnapshot = false;
  const stream = household.watch({ resumeAfterSeq: resume }, { signal });
  for await (const msg of stream) {
    lastMessageAt = Date.now();
    const item = msg.item;
    switch (item.case) {
      case "snapshot": {
        const s = item.value;
        state.children = s.children;
        state.statuses = new Map(s.statuses.map((st) => [st.childId, st]));
        state.devices = new Map(s.devices.map((d) => [d.deviceId, d]));
        state.guardians = new Map(s.guardians.map((g) => [g.guardianId, g]));
        state.pending = new Map(s.pendingRequests.map((r) => [r.requestId, r]));
        state.lastSeq = s.seq;
        void loadRecentActivity();
        void loadNetwork();
        break;
      }
      case "event":
        apply(item.value);
        break;
      case "status":
        state.statuses.set(item.value.childId, item.value);
        seen(item.value.asOfSeq);
        break;
      case "caughtUp":
        seen(item.value.seq);
        state.link = "live";
        break;
      case "heartbeat":
        seen(item.value.seq);
        break;
      case "deviceSeen":
        // Live only, with no seq: agents heard on the network, offered for adoption.
        heard(item.value.device);
        break;
      case "deviceGone":
        if (item.value.device) state.network.delete(item.value.device.keySha256Hex);
        break;
    }
    onChange();
    if (needSnapshot) return true; // reopen without resuming
  }
  return false;
}

/** Keeps one Watch open for as long as the page lives, resuming after drops. */
export async function runWatch(): Promise<void> {
  let backoff = 500;
  for (;;) {
    controller = new AbortController();
    const started = Date.now();
    try {
      // Leaving for a fresh snapshot is no outage: reopen at once, still live.
      if (await watchOnce(controller.signal)) continue;
    } catch (e) {
      const err = ConnectError.from(e);
      if (err.code === Code.Unauthenticated) {
        state.link = "revoked";
        onChange();
        return;
      }
    }
    if (state.link !== "connecting") state.link = "offline";
    onChange();
    if (Date.now() - started > 30_000) backoff = 500;
    await new Promise((r) => setTimeout(r, backoff));
    backoff = Math.min(backoff * 2, 15_000);
  }
}

/** Drops a stream that has gone quiet (a phone that slept), so runWatch resumes it. */
function checkStale(): void {
  if (controller && lastMessageAt && Date.now() - lastMessageAt > STALE_MS) {
    lastMessageAt = 0;
    controller.abort();
  }
}
setInterval(checkStale, 5_000);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") checkStale();
});

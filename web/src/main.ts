// Entry: /pair#CODE pairs this phone; everything else shows the household. The code
// sits in the URL fragment, so it never reaches the server or a log in a URL.
import "./style.css";
import { render } from "lit-html";
import {
  Code,
  ConnectError,
  act,
  describeError,
  forgetCredential,
  household,
  loadCredential,
  pair,
  parsePairingCode,
  type Credential,
} from "./api.js";
import { runWatch, state, subscribe } from "./store.js";
import { mainView, nextOccurrence, pairView, type Handlers, type Ui } from "./views.js";
import { minutesLabel, todayIn } from "./format.js";
import { create } from "@bufbuild/protobuf";
import { DateExceptionSchema } from "./gen/household/v1/common_pb.js";
import type { TimeRequest } from "./gen/household/v1/common_pb.js";

const root = document.getElementById("app")!;
root.textContent = ""; // lit-html renders after what is there: drop "Loading…"
const ui: Ui = {
  toast: "",
  busy: new Set(),
  weekOpen: new Set(),
  reports: new Map(),
  phones: undefined,
  ownInvite: "",
};
let cred: Credential | null = loadCredential();
let pairing = location.pathname === "/pair" ? parsePairingCode(decodeURIComponent(location.hash.slice(1))) : null;

let toastTimer = 0;
function toast(msg: string): void {
  ui.toast = msg;
  clearTimeout(toastTimer);
  toastTimer = window.setTimeout(() => {
    ui.toast = "";
    draw();
  }, 4000);
  draw();
}

/** Runs a tap: marks its button busy, retries with one idempotency key, reports. */
async function tap(busyKey: string, run: (key: string, signal: AbortSignal) => Promise<string>) {
  if (ui.busy.has(busyKey)) return;
  ui.busy.add(busyKey);
  draw();
  try {
    toast(await act(run));
  } catch (e) {
    toast(describeError(e));
  } finally {
    ui.busy.delete(busyKey);
    draw();
  }
}

/** (Re)loads the phones' list while it is open. */
function loadPhones(): void {
  household
    .listCredentials({})
    .then((r) => {
      if (ui.phones !== undefined) ui.phones = r;
    })
    .catch(() => {
      if (ui.phones !== undefined) ui.phones = "error";
    })
    .finally(draw);
}

const childName = (id: string) => state.children.find((c) => c.childId === id)?.displayName ?? "";

const handlers: Handlers = {
  async pair(ev: SubmitEvent) {
    ev.preventDefault();
    if (!pairing) return;
    const label = String(new FormData(ev.target as HTMLFormElement).get("label") ?? "").trim();
    if (!label) return;
    ui.busy.add("pair");
    draw();
    try {
      cred = await pair(pairing.code, label);
      pairing = null;
      history.replaceState(null, "", "/"); // drop the spent code from the address bar
      start();
    } catch (e) {
      toast(describeError(e));
    } finally {
      ui.busy.delete("pair");
      draw();
    }
  },
  grant(childId, minutes) {
    void tap(`${childId}:g${minutes}`, async (idempotencyKey, signal) => {
      const r = await household.grantTime({ childId, minutes, idempotencyKey }, { signal });
      return `${r.replayed ? "Already added" : "Added"} ${minutesLabel(minutes)} for ${childName(childId)}.`;
    });
  },
  lock(childId) {
    void tap(`${childId}:lock`, async (idempotencyKey, signal) => {
      await household.lock({ target: { case: "childId", value: childId }, idempotencyKey }, { signal });
      return `Locked ${childName(childId)}.`;
    });
  },
  unlock(childId, until) {
    const untilDate = until ? nextOccurrence(until) : null;
    void tap(`${childId}:unlock`, async (idempotencyKey, signal) => {
      await household.unlock(
        {
          target: { case: "childId", value: childId },
          idempotencyKey,
          untilUnixMicros: untilDate ? BigInt(untilDate.getTime()) * 1000n : undefined,
        },
        { signal },
      );
      return `Unlocked ${childName(childId)}${until ? ` until ${until}` : ""}.`;
    });
  },
  approve(req: TimeRequest) {
    void tap(req.requestId, async (idempotencyKey, signal) => {
      await household.approveTimeRequest({ requestId: req.requestId, idempotencyKey }, { signal });
      return `Approved ${minutesLabel(req.minutes)} for ${childName(req.childId)}.`;
    });
  },
  deny(req: TimeRequest) {
    void tap(req.requestId, async (idempotencyKey, signal) => {
      await household.denyTimeRequest({ requestId: req.requestId, idempotencyKey }, { signal });
      return `Said no to ${childName(req.childId)}.`;
    });
  },
  todayOnly(childId, minutes, noBedtime) {
    void tap(`${childId}:today`, async (_key, signal) => {
      // A whole-policy edit with the revision read: a write that lost a race with
      // another guardian's is redone on the fresh policy, and a retry whose first try
      // went through finds today's exception already there.
      for (let attempt = 0; ; attempt++) {
        const { policy } = await household.getPolicy({ childId }, { signal });
        if (!policy) throw new Error("The hub sent no policy.");
        const date = todayIn(policy.timeZone);
        const same = (d?: { year: number; month: number; day: number }) =>
          d?.year === date.year && d.month === date.month && d.day === date.day;
        const current = policy.exceptions.find((e) => same(e.date));
        const done = `Today: ${minutes === null ? "the usual time" : minutesLabel(minutes)}${
          noBedtime ? ", no bedtime" : ""} for ${childName(childId)}.`;
        if (current && current.dailyMinutes === (minutes ?? undefined) &&
            current.skipDowntime === noBedtime) {
          return done;
        }
        const exception = create(DateExceptionSchema, {
          date,
          dailyMinutes: minutes ?? undefined,
          skipDowntime: noBedtime,
          note: "today only",
        });
        policy.exceptions = [...policy.exceptions.filter((e) => !same(e.date)), exception];
        try {
          await household.setPolicy({ childId, policy, expectedRevision: policy.revision }, { signal });
          return done;
        } catch (e) {
          if (attempt < 2 && ConnectError.from(e).code === Code.Aborted) continue;
          throw e;
        }
      }
    });
  },
  toggleWeek(childId, open) {
    if (!open) {
      ui.weekOpen.delete(childId);
      draw();
      return;
    }
    ui.weekOpen.add(childId);
    ui.reports.set(childId, "loading");
    draw();
    const end = new Date();
    const start = new Date(end);
    start.setDate(start.getDate() - 6);
    const date = (d: Date) => ({ year: d.getFullYear(), month: d.getMonth() + 1, day: d.getDate() });
    household
      .getReport({ childId, startDate: date(start), endDate: date(end) })
      .then((r) => ui.reports.set(childId, r))
      .catch(() => ui.reports.set(childId, "error"))
      .finally(draw);
  },
  togglePhones(open) {
    ui.phones = open ? "loading" : undefined;
    ui.ownInvite = "";
    if (open) loadPhones();
    draw();
  },
  revoke(identityId, credentialId, label) {
    void tap(`revoke:${credentialId}`, async (_key, signal) => {
      await household.revokeCredential({ identityId, credentialId }, { signal });
      loadPhones();
      return `${label} can no longer reach the household.`;
    });
  },
  inviteOwnPhone() {
    void tap("invite-phone", async (idempotencyKey, signal) => {
      const r = await household.inviteCredential({ idempotencyKey, validMinutes: 15 }, { signal });
      ui.ownInvite = `${location.origin}/pair#${r.invite?.pairingCode ?? ""}`;
      return "Open the link on your other phone.";
    });
  },
  adopt(ev, keySha256Hex, hostName) {
    ev.preventDefault();
    const f = new FormData(ev.target as HTMLFormElement);
    const childId = String(f.get("child") ?? "");
    const verificationCode = String(f.get("code") ?? "").replace(/\s+/g, "");
    const busyKey = `adopt:${keySha256Hex}`;
    if (ui.busy.has(busyKey)) return;
    ui.busy.add(busyKey);
    draw();
    // Not retried: the hub waits (up to a minute) for the device's next poll, and a
    // second try while the first is under way is refused. The key's prefix names the
    // device even when two share a host name.
    household
      .adoptDevice(
        { host: keySha256Hex.slice(0, 16), childId, verificationCode },
        { signal: AbortSignal.timeout(75_000) },
      )
      .then((r) => toast(`${r.device?.displayName ?? hostName} now belongs to ${childName(childId)}.`))
      .catch((e) => toast(describeError(e)))
      .finally(() => {
        ui.busy.delete(busyKey);
        draw();
      });
  },
  forget() {
    forgetCredential();
    location.replace("/pair");
  },
};

let frame = 0;
function draw(): void {
  if (frame) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    if (pairing || !cred) render(pairView(pairing, ui, handlers), root);
    else render(mainView(cred, ui, handlers), root);
  });
}

let started = false;
function start(): void {
  if (started || !cred) return;
  started = true;
  let credentialsSeq = state.credentialsSeq;
  subscribe(() => {
    // A phone paired or revoked anywhere: the open list follows.
    if (state.credentialsSeq !== credentialsSeq) {
      credentialsSeq = state.credentialsSeq;
      if (ui.phones !== undefined) loadPhones();
    }
    draw();
  });
  void runWatch();
}

// A paired phone that opens a new pairing link pairs again (a new token).
if (!pairing) start();
draw();

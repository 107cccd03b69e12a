// The screens, as lit-html templates: pairing, and the household with one card per
// child. Every control has a visible or aria label; nothing uses inline styles, so
// the hub's Content-Security-Policy can forbid them.
import { html, svg, nothing, type TemplateResult } from "lit-html";
import type {
  ChildStatus,
  GetReportResponse,
  ListCredentialsResponse,
} from "./gen/household/v1/guardian_pb.js";
import {
  CredentialKind,
  Role,
  ScreenState,
  type Child,
  type TimeRequest,
} from "./gen/household/v1/common_pb.js";
import type { Credential } from "./api.js";
import { state } from "./store.js";
import {
  STATE_CLASS,
  STATE_LABEL,
  actorName,
  clock,
  describeAction,
  duration,
  minutesLabel,
  shortDuration,
  weekday,
} from "./format.js";

export interface Ui {
  toast: string;
  busy: Set<string>;
  weekOpen: Set<string>;
  reports: Map<string, GetReportResponse | "loading" | "error">;
  /** The household's phones, while their list is open. */
  phones: ListCredentialsResponse | "loading" | "error" | undefined;
  /** The pairing page for another phone of this guardian, once asked for. */
  ownInvite: string;
}

export interface Handlers {
  pair(ev: SubmitEvent): void;
  grant(childId: string, minutes: number): void;
  lock(childId: string): void;
  unlock(childId: string, until: string | null): void;
  approve(req: TimeRequest): void;
  deny(req: TimeRequest): void;
  toggleWeek(childId: string, open: boolean): void;
  todayOnly(childId: string, minutes: number | null, noBedtime: boolean): void;
  togglePhones(open: boolean): void;
  revoke(identityId: string, credentialId: string, label: string): void;
  inviteOwnPhone(): void;
  adopt(ev: SubmitEvent, keySha256Hex: string, hostName: string): void;
  forget(): void;
}

// ---- pairing ------------------------------------------------------------------------

function groups(hex: string): string {
  return (hex.match(/.{1,4}/g) ?? []).join(" ").toUpperCase();
}

export function pairView(
  code: { code: string; caSha256: string } | null,
  ui: Ui,
  h: Handlers,
): TemplateResult {
  if (!code) {
    return html`<section class="card">
      <h1>Pair this phone</h1>
      <p>Open the link from <code>household invite guardian NAME --qr</code>, or for your own
        phone <code>household invite phone --qr</code> (scan its QR code), to pair this phone.
        The link carries a one-time code.</p>
    </section>`;
  }
  return html`<section class="card">
    <h1>Pair this phone</h1>
    <h2>1. Trust your household hub</h2>
    <p>Your hub made its own certificate authority. Do this once per phone:</p>
    <ul class="steps">
      <li><strong>iPhone:</strong> open <a href="/ca.pem" download="household-ca.pem">the
        household certificate</a>, allow the download, then Settings → Profile Downloaded →
        Install. Then Settings → General → About → Certificate Trust Settings, and switch it on.</li>
      <li><strong>Android:</strong> download <a href="/ca.pem" download="household-ca.pem">the
        household certificate</a>, then Settings → Security → Encryption &amp; credentials →
        Install a certificate → CA certificate, and pick the file.</li>
    </ul>
    <p>The certificate's SHA-256 fingerprint must be exactly:</p>
    <p class="fp" aria-label="Fingerprint">${groups(code.caSha256)}</p>
    <p class="muted">If your phone shows another fingerprint, stop: this is not your hub.</p>
    <h2>2. Name this phone</h2>
    <form @submit=${h.pair}>
      <label for="label">Name of this phone</label>
      <input id="label" name="label" required maxlength="64" autocomplete="off"
        placeholder="Dad's phone" />
      <button class="primary" type="submit" ?disabled=${ui.busy.has("pair")}>
        ${ui.busy.has("pair") ? "Pairing…" : "Pair"}
      </button>
    </form>
  </section>`;
}

// ---- the household ------------------------------------------------------------------

function ring(st: ChildStatus | undefined): TemplateResult {
  const r = 42;
  const c = 2 * Math.PI * r;
  const allowance = st ? Number(st.allowanceSeconds) : 0;
  const remaining = st ? Math.max(0, Number(st.remainingSeconds)) : 0;
  const frac = allowance > 0 ? Math.min(1, remaining / allowance) : 0;
  const cls = st ? STATE_CLASS[st.state] : "s-off";
  const text = st ? shortDuration(remaining) : "–";
  return html`<svg class="ring ${cls}" viewBox="0 0 100 100" role="img"
      aria-label="${duration(remaining)} left of ${duration(allowance)}">
    ${svg`<circle class="track" cx="50" cy="50" r="${r}" />
      <circle class="fill" cx="50" cy="50" r="${r}" stroke-dasharray="${(frac * c).toFixed(1)} ${c.toFixed(1)}"
        transform="rotate(-90 50 50)" />
      <text x="50" y="48" text-anchor="middle" class="big">${text}</text>
      <text x="50" y="64" text-anchor="middle" class="small">left</text>`}
  </svg>`;
}

function nextOccurrence(hhmm: string): Date {
  const [h, m] = hhmm.split(":").map(Number);
  const d = new Date();
  d.setHours(h ?? 0, m ?? 0, 0, 0);
  if (d.getTime() <= Date.now()) d.setDate(d.getDate() + 1);
  return d;
}
export { nextOccurrence };

function requestRow(req: TimeRequest, name: string, ui: Ui, h: Handlers): TemplateResult {
  const busy = ui.busy.has(req.requestId);
  const what = `${name} asks for ${minutesLabel(req.minutes)}${req.note ? `: “${req.note}”` : ""}`;
  return html`<li class="req">
    <span>${what} <span class="muted">(${clock(req.requestedUnixMicros)})</span></span>
    <span class="row">
      <button class="ok" ?disabled=${busy} @click=${() => h.approve(req)}
        aria-label="Approve ${minutesLabel(req.minutes)} for ${name}">Approve</button>
      <button ?disabled=${busy} @click=${() => h.deny(req)}
        aria-label="Deny ${name}'s request">Deny</button>
    </span>
  </li>`;
}

function childCard(child: Child, ui: Ui, h: Handlers): TemplateResult {
  const st = state.statuses.get(child.childId);
  const name = child.displayName;
  const devs = st?.devices ?? [];
  const online = devs.filter((d) => d.online).length;
  const pending = [...state.pending.values()].filter((r) => r.childId === child.childId);
  const locked = st?.state === ScreenState.LOCKED || (st?.lock?.locked ?? false);
  const busy = (k: string) => ui.busy.has(`${child.childId}:${k}`);
  const cls = st ? STATE_CLASS[st.state] : "s-off";
  const unlockedUntil = st?.unlockedUntilUnixMicros;
  return html`<section class="card child" aria-labelledby="n-${child.childId}">
    <header class="row">
      <h2 id="n-${child.childId}">${name}</h2>
      <span class="badge ${cls}">${st ? STATE_LABEL[st.state] : "…"}</span>
    </header>
    <div class="row top">
      ${ring(st)}
      <div class="facts">
        <p>${devs.length === 0
          ? "No devices yet"
          : `${online} of ${devs.length} device${devs.length === 1 ? "" : "s"} online`}</p>
        <ul class="devs">
          ${devs.map(
            (d) => html`<li><span class="dot ${d.online ? "on" : ""}" aria-hidden="true"></span>
              ${d.displayName} <span class="muted">${d.online ? "online" : "offline"},
              ${duration(d.usedSecondsToday)} today</span></li>`,
          )}
        </ul>
        ${st?.lock?.locked && st.lock.untilUnixMicros !== undefined
          ? html`<p class="muted">Locked until ${clock(st.lock.untilUnixMicros)}</p>`
          : nothing}
        ${unlockedUntil !== undefined
          ? html`<p class="muted">Free until ${clock(unlockedUntil)}</p>`
          : nothing}
      </div>
    </div>
    ${pending.length
      ? html`<ul class="reqs" aria-label="Requests from ${name}">
          ${pending.map((r) => requestRow(r, name, ui, h))}</ul>`
      : nothing}
    <div class="actions" role="group" aria-label="Give ${name} more time">
      ${[15, 30, 60].map(
        (m) => html`<button class="primary" ?disabled=${busy(`g${m}`)}
          @click=${() => h.grant(child.childId, m)}
          aria-label="Give ${name} ${minutesLabel(m)} more">+${minutesLabel(m)}</button>`,
      )}
    </div>
    <div class="actions two">
      ${locked
        ? html`<button class="ok" ?disabled=${busy("unlock")} @click=${() => h.unlock(child.childId, null)}
            aria-label="Unlock ${name}">Unlock</button>`
        : html`<button class="stop" ?disabled=${busy("lock")} @click=${() => h.lock(child.childId)}
            aria-label="Lock ${name} now">Lock now</button>`}
      <details class="until">
        <summary aria-label="Unlock ${name} until a time">Unlock until…</summary>
        <form class="row" @submit=${(ev: SubmitEvent) => {
          ev.preventDefault();
          const v = new FormData(ev.target as HTMLFormElement).get("until");
          if (typeof v === "string" && v) h.unlock(child.childId, v);
        }}>
          <label class="sr" for="u-${child.childId}">Unlock ${name} until</label>
          <input id="u-${child.childId}" name="until" type="time" required />
          <button ?disabled=${busy("unlock")} type="submit">Unlock</button>
        </form>
      </details>
    </div>
    <details class="until">
      <summary aria-label="Change ${name}'s rules for today only">Today only…</summary>
      <form @submit=${(ev: SubmitEvent) => {
        ev.preventDefault();
        const f = new FormData(ev.target as HTMLFormElement);
        const m = String(f.get("minutes") ?? "").trim();
        h.todayOnly(child.childId, m === "" ? null : Number(m), f.get("nobed") === "on");
      }}>
        <label for="t-${child.childId}">${name}'s minutes today (empty: as usual)</label>
        <input id="t-${child.childId}" name="minutes" type="number" inputmode="numeric"
          min="0" max="1440" step="5" />
        <span class="check"><input id="b-${child.childId}" type="checkbox" name="nobed" />
          <label for="b-${child.childId}">No bedtime tonight</label></span>
        <button ?disabled=${busy("today")} type="submit">Set for today</button>
      </form>
    </details>
    <details class="week" @toggle=${(ev: Event) =>
      h.toggleWeek(child.childId, (ev.target as HTMLDetailsElement).open)}>
      <summary>This week</summary>
      ${ui.weekOpen.has(child.childId) ? weekChart(ui.reports.get(child.childId), name) : nothing}
    </details>
  </section>`;
}

const PALETTE = ["c0", "c1", "c2", "c3", "c4"];

function weekChart(rep: GetReportResponse | "loading" | "error" | undefined, name: string) {
  if (rep === undefined || rep === "loading") return html`<p class="muted">Loading…</p>`;
  if (rep === "error") return html`<p class="muted">Could not load the week.</p>`;
  const devices = rep.deviceTotals.map((d) => d.deviceId);
  const names = new Map(rep.deviceTotals.map((d) => [d.deviceId, d.displayName]));
  const max = Math.max(3600, ...rep.days.map((d) => Number(d.usedSeconds)), ...rep.days.map((d) =>
    d.devices.reduce((a, x) => a + Number(x.usedSeconds), 0)));
  if (rep.totalUsedSeconds === 0n) return html`<p class="muted">No screen use in the last 7 days.</p>`;
  const W = 300, H = 140, top = 8, base = 120;
  const bw = W / Math.max(1, rep.days.length);
  const summary = rep.days
    .map((d) => `${weekday(new Date(d.date!.year, d.date!.month - 1, d.date!.day))} ${duration(d.usedSeconds)}`)
    .join(", ");
  return html`<svg class="chart" viewBox="0 0 ${W} ${H}" role="img"
      aria-label="${name}'s screen time this week: ${summary}">
    ${rep.days.map((d, i) => {
      const date = new Date(d.date!.year, d.date!.month - 1, d.date!.day);
      let y = base;
      const x = i * bw + bw * 0.2;
      return svg`<g>
        ${d.devices.map((dev) => {
          const h2 = (Number(dev.usedSeconds) / max) * (base - top);
          y -= h2;
          const k = PALETTE[Math.max(0, devices.indexOf(dev.deviceId)) % PALETTE.length];
          return svg`<rect class="${k}" x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${(bw * 0.6).toFixed(1)}"
            height="${h2.toFixed(1)}"><title>${dev.displayName}: ${duration(dev.usedSeconds)}</title></rect>`;
        })}
        <text class="axis" x="${(i * bw + bw / 2).toFixed(1)}" y="${H - 4}" text-anchor="middle">${weekday(date)}</text>
      </g>`;
    })}
    ${svg`<line class="base" x1="0" x2="${W}" y1="${base}" y2="${base}" />`}
  </svg>
  <ul class="legend">
    ${devices.map((id, i) => html`<li><span class="key ${PALETTE[i % PALETTE.length]}" aria-hidden="true"></span>
      ${names.get(id)}: ${duration(rep.deviceTotals[i]!.usedSeconds)}</li>`)}
  </ul>`;
}

function activityList(cred: Credential): TemplateResult {
  const childName = (id: string) =>
    state.children.find((c) => c.childId === id)?.displayName ?? "a child";
  return html`<section class="card" aria-labelledby="who">
    <h2 id="who">Who did what</h2>
    ${state.activity.length === 0
      ? html`<p class="muted">Nothing yet today.</p>`
      : html`<ul class="activity">
          ${state.activity.map(
            (e) => html`<li><span>${actorName(e.actor, state.guardians, state.devices,
              cred.credentialId)} ${describeAction(e, childName(e.childId))}</span>
              <time class="muted">${clock(e.timeUnixMicros)}</time></li>`,
          )}</ul>`}
  </section>`;
}

function phoneList(cred: Credential, ui: Ui, h: Handlers): TemplateResult {
  const list = ui.phones;
  if (list === undefined || list === "loading") return html`<p class="muted">Loading…</p>`;
  if (list === "error") return html`<p class="muted">Could not load the phones.</p>`;
  const phones = list.identities
    .filter((i) => i.role === Role.GUARDIAN && !i.revoked)
    .flatMap((i) =>
      i.credentials
        .filter((c) => c.kind === CredentialKind.BEARER_TOKEN && !c.revoked)
        .map((c) => ({ guardian: i.displayName, identityId: i.identityId, c })),
    );
  return html`<ul class="phones">
      ${phones.map(({ guardian, identityId, c }) => {
        const mine = c.credentialId === cred.credentialId;
        const busy = ui.busy.has(`revoke:${c.credentialId}`);
        return html`<li>
          <span>${c.label} <span class="muted">(${guardian}${mine ? ", this phone" : ""})</span></span>
          ${mine
            ? nothing
            : html`<details class="revoke">
                <summary aria-label="Revoke ${c.label}…">Revoke…</summary>
                <button class="stop" ?disabled=${busy}
                  @click=${() => h.revoke(identityId, c.credentialId, c.label)}
                  aria-label="Revoke ${c.label} now">Revoke ${c.label}</button>
              </details>`}
        </li>`;
      })}
    </ul>
    <p class="muted">A revoked phone is refused at once; it can be paired again with a new
      invite.</p>
    <button ?disabled=${ui.busy.has("invite-phone")} @click=${h.inviteOwnPhone}>
      Pair another phone of mine</button>
    ${ui.ownInvite
      ? html`<p>Open this link on your other phone within 15 minutes (it works once):</p>
          <p class="fp"><a href=${ui.ownInvite} aria-label="Pairing link for your other phone"
            >${ui.ownInvite}</a></p>`
      : nothing}`;
}

/** Agents on the home network that belong to no household: adopt with their code. */
function networkCard(ui: Ui, h: Handlers): TemplateResult | typeof nothing {
  const devices = [...state.network.values()];
  if (devices.length === 0) return nothing;
  return html`<section class="card" aria-labelledby="net">
    <h2 id="net">New on the network</h2>
    <p class="muted">Child agents that belong to no household yet. Adopt one with the six
      digits it shows (<code>child-agent status</code> on it).</p>
    <ul class="phones">
      ${devices.map((d) => {
        const busy = ui.busy.has(`adopt:${d.keySha256Hex}`);
        return html`<li>
          <span>${d.hostName} <span class="muted">(${d.platform || "?"}${
            d.addresses[0] ? `, ${d.addresses[0]}` : ""}, seen ${clock(d.lastSeenUnixMicros)})</span></span>
          <details class="until">
            <summary aria-label="Adopt ${d.hostName}…">Adopt…</summary>
            <form @submit=${(ev: SubmitEvent) => h.adopt(ev, d.keySha256Hex, d.hostName)}>
              <label for="c-${d.keySha256Hex}">Child</label>
              <select id="c-${d.keySha256Hex}" name="child" required>
                ${state.children.map((c) => html`<option value=${c.childId}>${c.displayName}</option>`)}
              </select>
              <label for="v-${d.keySha256Hex}">Code ${d.hostName} shows</label>
              <input id="v-${d.keySha256Hex}" name="code" required inputmode="numeric"
                autocomplete="off" pattern="[0-9 ]{6,11}" />
              <button class="primary" type="submit" ?disabled=${busy}>
                ${busy ? "Waiting for the device…" : `Adopt ${d.hostName}`}</button>
            </form>
          </details>
        </li>`;
      })}
    </ul>
  </section>`;
}

const LINK_TEXT = {
  connecting: "Connecting…",
  live: "Live",
  offline: "Reconnecting…",
  revoked: "Not paired",
} as const;

export function mainView(cred: Credential, ui: Ui, h: Handlers): TemplateResult {
  if (state.link === "revoked") {
    return html`<section class="card">
      <h1>This phone is no longer paired</h1>
      <p>The hub refused this phone's key (it may have been revoked). Ask for a new
        invite and scan its QR code.</p>
      <button class="primary" @click=${h.forget}>Forget the old key</button>
    </section>`;
  }
  return html`<header class="bar row">
      <h1>Screen time</h1>
      <span class="link ${state.link}" role="status">${LINK_TEXT[state.link]}</span>
    </header>
    ${state.children.length === 0 && state.link === "live"
      ? html`<section class="card"><p>No children yet. Add one with
          <code>household children add</code>.</p></section>`
      : nothing}
    ${state.children.map((c) => childCard(c, ui, h))}
    ${networkCard(ui, h)}
    ${activityList(cred)}
    <details class="card" @toggle=${(ev: Event) =>
      h.togglePhones((ev.target as HTMLDetailsElement).open)}>
      <summary>Phones</summary>
      ${ui.phones === undefined ? nothing : phoneList(cred, ui, h)}
    </details>
    <footer class="muted">
      Signed in as ${cred.displayName} on “${cred.label}”.
      <button class="link-btn" @click=${h.forget}>Unpair this phone</button>
    </footer>
    <p class="toast" role="status" aria-live="polite">${ui.toast}</p>`;
}

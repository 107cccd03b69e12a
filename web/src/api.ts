// Talking to the hub: one gRPC-Web transport to the page's own origin (the hub serves
// this app and refuses other origins), the bearer token from localStorage, and tap
// actions that carry one idempotency key across their retries.
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { Agent } from "./gen/household/v1/agent_pb.js";
import { Household } from "./gen/household/v1/guardian_pb.js";
import { Role } from "./gen/household/v1/common_pb.js";

const STORE_KEY = "household.credential.v1";

/** What the phone keeps after pairing. The token is shown by the hub only once. */
export interface Credential {
  token: string;
  credentialId: string;
  guardianId: string;
  displayName: string;
  label: string;
}

export function loadCredential(): Credential | null {
  try {
    const raw = localStorage.getItem(STORE_KEY);
    if (!raw) return null;
    const c = JSON.parse(raw) as Partial<Credential>;
    return typeof c.token === "string" && c.token.startsWith("hht1.") ? (c as Credential) : null;
  } catch {
    return null;
  }
}

export function forgetCredential(): void {
  localStorage.removeItem(STORE_KEY);
}

const auth: Interceptor = (next) => async (req) => {
  const c = loadCredential();
  if (c && req.service.typeName === Household.typeName) {
    req.header.set("authorization", `Bearer ${c.token}`);
  }
  return next(req);
};

const transport = createGrpcWebTransport({
  baseUrl: location.origin,
  useBinaryFormat: true,
  interceptors: [auth],
});

export const household = createClient(Household, transport);
const agent = createClient(Agent, transport);

/** A pairing code "hh1.SECRET.CA_SHA256", with the CA fingerprint split out. */
export function parsePairingCode(code: string): { code: string; caSha256: string } | null {
  const m = /^hh1\.([0-9a-f]{32})\.([0-9a-f]{64})$/i.exec(code.trim());
  return m ? { code: code.trim(), caSha256: m[2]!.toLowerCase() } : null;
}

/** Redeems a guardian pairing code for a bearer token and stores it. */
export async function pair(code: string, label: string): Promise<Credential> {
  const res = await agent.enroll({
    pairingCode: code,
    credential: { case: "bearerToken", value: { label } },
    platform: "browser",
    softwareVersion: "web-0.1",
    expectedRole: Role.GUARDIAN,
  });
  if (res.credential.case !== "bearerToken") {
    throw new Error("The hub did not issue a token for this code.");
  }
  const c: Credential = {
    token: res.credential.value,
    credentialId: res.credentialId,
    guardianId: res.identityId,
    displayName: res.displayName,
    label,
  };
  localStorage.setItem(STORE_KEY, JSON.stringify(c));
  return c;
}

/** A fresh idempotency key for one tap: letters, digits and "-", as the API allows. */
export function newKey(): string {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

const RETRYABLE = new Set([Code.Unavailable, Code.DeadlineExceeded, Code.Unknown, Code.Internal]);

/**
 * Runs one user action. The key is made once, here, and sent on every retry, so a tap
 * whose answer was lost acts once however often it is retried.
 */
export async function act<T>(call: (key: string, signal: AbortSignal) => Promise<T>): Promise<T> {
  const key = newKey();
  let delay = 400;
  for (let attempt = 1; ; attempt++) {
    // Each attempt has 10 s; one that times out is retried like a lost answer.
    const signal = AbortSignal.timeout(10_000);
    try {
      return await call(key, signal);
    } catch (e) {
      const err = ConnectError.from(e);
      const retryable = RETRYABLE.has(err.code) || signal.aborted;
      if (attempt >= 4 || !retryable) throw err;
      await new Promise((r) => setTimeout(r, delay));
      delay *= 2;
    }
  }
}

/** A message fit for a person, from whatever a call threw. */
export function describeError(e: unknown): string {
  const err = ConnectError.from(e);
  switch (err.code) {
    case Code.Unauthenticated:
      return "The hub no longer accepts this phone. Pair it again.";
    case Code.PermissionDenied:
      return "Not allowed.";
    case Code.Unavailable:
    case Code.DeadlineExceeded:
      return "Can't reach the hub. Are you on the home network?";
    case Code.ResourceExhausted:
      return "Too many tries; wait a minute.";
    default:
      return err.rawMessage || "Something went wrong.";
  }
}

export { Code, ConnectError };

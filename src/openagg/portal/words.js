// Plain words for the codes the API returns, and dates in the reader's locale.

export const TICKET_STATUSES = [
  ["NEW", "New", "waiting in the engineers' queue"],
  ["IN_PROCESS", "In process", "an engineer is working on it"],
  ["ADDITIONAL_LOGIN_INFO_REQUIRED", "Waiting for login info",
    "the end user must answer the engineer's questions"],
  ["ADDITIONAL_LOGIN_INFO_SUBMITTED", "Login info submitted",
    "the end user answered; back with the engineer"],
  ["ESCALATED", "Escalated", "handed to a senior engineer or the institution"],
  ["REOPENED", "Reopened", "the problem came back or a fix did not hold; it keeps its place"],
  ["CLOSED", "Closed", "fixed, and verified by a successful aggregation"],
  ["INVALID", "Invalid", "not an aggregation problem, or the member was deleted"],
];
const STATUS = Object.fromEntries(TICKET_STATUSES.map(([code, short, long]) => [code, { short, long }]));
const ENDED = new Set(["CLOSED", "INVALID"]);

export const isOpen = (ticket) => !ENDED.has(ticket.status);

// An open ticket out of the queue that is not waiting on the end user is being
// verified: an engineer made a fix and the member's next aggregation decides.
export const isVerifying = (ticket) => isOpen(ticket) && ticket.queue_position === null
  && ticket.status !== "ADDITIONAL_LOGIN_INFO_REQUIRED";

export function statusShort(ticket) {
  if (isVerifying(ticket)) return "Verifying a fix";
  return STATUS[ticket.status]?.short || ticket.status;
}

export function statusLong(ticket) {
  if (isVerifying(ticket)) {
    return "an engineer made a fix; the member's next aggregation closes the ticket, "
      + "or puts it back in the queue if it still fails";
  }
  return STATUS[ticket.status]?.long || "";
}

export function position(ticket) {
  if (ticket.queue_position === null || ticket.queue_position === undefined) return "–";
  return ticket.queue_position === 1 ? "1 (next)" : String(ticket.queue_position);
}

const ACTIONS = {
  reported: "Reported",
  joined: "Reported again (joined the open ticket)",
  reopened: "Reopened by the client",
  taken: "Taken by an engineer",
  info_requested: "Engineer asked for login info",
  info_submitted: "End user answered the questions",
  info_read: "Engineer read the answers",
  escalated: "Escalated",
  marked_invalid: "Marked invalid",
  resolved: "Engineer made a fix",
  verified: "Fix verified: the member aggregated",
  verification_failed: "Fix not verified",
  member_deleted: "Member deleted",
};
export const action = (code) => ACTIONS[code] || code;

const ACTORS = {
  END_USER: "End user",
  AGENT: "Support agent",
  OPERATOR: "Engineer",
  SYSTEM: "OpenAgg",
};

export function actor(a) {
  const who = ACTORS[a.type] || a.type;
  const name = a.name || a.id;
  return name && a.type !== "SYSTEM" ? `${who} ${name}` : who;
}

export const CHANNELS = { DIRECT: "Direct (end user)", INDIRECT: "Indirect (support staff)" };

const PROMPT_TYPES = { TEXT: "text", TOKEN: "one-time code", OPTIONS: "a choice" };
export const promptType = (type) => PROMPT_TYPES[type] || type;

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

export function when(iso) {
  return iso ? dateTime.format(new Date(iso)) : "–";
}

export function fromNow(iso, now = Date.now()) {
  if (!iso) return "";
  const seconds = (new Date(iso).getTime() - now) / 1000;
  const steps = [[86400, "day"], [3600, "hour"], [60, "minute"]];
  for (const [size, unit] of steps) {
    if (Math.abs(seconds) >= size) return relative.format(Math.round(seconds / size), unit);
  }
  return relative.format(0, "minute");
}

// The platform's OAuth callback page, in the window the Connect widget opened: as MX's
// OAuth "complete" page does, it tells the widget how the step ended
// ({mx: true, type: "oauthComplete/success" | "oauthComplete/error",
// metadata: {member_guid, error_reason}}), to this platform's own origin only (the
// widget is served from it), then closes itself. Without an opener (the link was
// opened some other way, or the institution's page cut the tie) the page stays as it
// is: it says in words what happened.

const data = document.getElementById("oa-oauth-complete");
const message = data ? JSON.parse(data.textContent) : null;
let opener = null;
try {
  opener = window.opener;
} catch {
  opener = null;
}
if (message && opener && opener !== window) {
  let told = false;
  try {
    opener.postMessage({ mx: true, ...message }, window.location.origin);
    told = true;
  } catch {
    told = false; // the opener is gone: the page stays
  }
  if (told) window.close();
}

/* LTI launch inside the LMS's iframe: can this frame keep a cookie? Yes: go on with the login here.
   No (third-party cookies blocked): show the "open in a new window" offer. No inline script (CSP). */
(function () {
  "use strict";
  var box = document.getElementById("lti-cookie-check");
  if (!box) { return; }
  var secure = window.location.protocol === "https:";
  document.cookie = "lti_cookie_check=1; path=/; max-age=60" + (secure ? "; SameSite=None; Secure" : "");
  if (document.cookie.indexOf("lti_cookie_check=1") !== -1) {
    window.location.replace(box.getAttribute("data-continue"));
    return;
  }
  document.getElementById("lti-loading").hidden = true;
  document.getElementById("lti-blocked").hidden = false;
})();

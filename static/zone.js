// Nashra's sign-up forms (the page and the fragment a site embeds): fills their hidden `tz`
// field with the time zone the reader's own browser keeps, so digests and alerts follow the
// reader's clock. No lookup by IP; without this script the reader gets the newsroom's zone.
(function () {
  "use strict";
  var zone = "";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (e) {
    return;
  }
  function fill() {
    var fields = document.querySelectorAll("input[data-nashra-tz]");
    for (var i = 0; i < fields.length; i++) {
      if (!fields[i].value) {
        fields[i].value = zone;
      }
    }
  }
  if (zone) {
    fill();
    // A fragment a site's script inserts later is filled when its form is sent.
    document.addEventListener("submit", fill, true);
  }
})();

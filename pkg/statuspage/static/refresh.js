// Reloads the page every data-refresh seconds while it is visible, so a
// status screen stays current. The page works the same without it.
(function () {
  "use strict";
  var seconds = Number(document.body.getAttribute("data-refresh"));
  if (!(seconds > 0)) {
    return;
  }
  function tick() {
    // Keep what the reader opened or selected: wait for a quieter moment.
    var busy = document.visibilityState !== "visible" ||
      document.querySelector("details[open]") !== null ||
      String(window.getSelection()) !== "";
    if (busy) {
      window.setTimeout(tick, seconds * 1000);
      return;
    }
    window.location.reload();
  }
  window.setTimeout(tick, seconds * 1000);
})();

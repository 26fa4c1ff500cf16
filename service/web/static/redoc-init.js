// Starts ReDoc on /redoc, from a file rather than an inline script (script-src 'self').
"use strict";
(function () {
  var element = document.getElementById("redoc");
  // Search runs in a Web Worker that ReDoc builds from a blob: URL, which the policy forbids; the
  // rest of ReDoc does not need it.
  Redoc.init(element.dataset.openapiUrl, { disableSearch: true, hideDownloadButton: false }, element);
})();

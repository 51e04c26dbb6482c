// Starts Swagger UI on the /docs page (aura_livekit_backend/docs_page.py). A file of its
// own, not an inline script, so the page's Content-Security-Policy needs no
// 'unsafe-inline'. The page names the document's URL; this script names no URL at all.
"use strict";

(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    presets: [SwaggerUIBundle.presets.apis],
    // The bare layout: no top bar whose box loads a document from any URL.
    layout: "BaseLayout",
    // Never ask swagger.io to validate the document, nor read options from the URL.
    validatorUrl: null,
    queryConfigEnabled: false,
    deepLinking: true,
    // As sanic-ext's page showed it.
    tagsSorter: "alpha",
    operationsSorter: "alpha",
    docExpansion: "full",
  });
})();

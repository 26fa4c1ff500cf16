// Starts Swagger UI on /docs. A separate file, not an inline script, so that it runs under the
// service's content security policy (script-src 'self').
"use strict";
(function () {
  var element = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: element.dataset.openapiUrl,
    domNode: element,
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    // Swagger UI would otherwise ask validator.swagger.io about the schema: a request off the origin.
    validatorUrl: null,
  });
})();

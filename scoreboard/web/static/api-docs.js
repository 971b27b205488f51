// The API reference page: Swagger UI (vendored, see VENDORED.md) on this server's OpenAPI document.
"use strict";

window.ui = SwaggerUIBundle({
  url: "/api/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  // The default sends the document to a public validator and shows its badge: nothing leaves.
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});

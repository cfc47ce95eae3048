// Starts Swagger UI on the document this instance serves. A separate file, so the page's CSP needs no inline script.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/swagger/json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    // The default validator badge calls a public service: the page loads nothing from outside this instance.
    validatorUrl: null,
    // A pasted token lives in this tab only.
    persistAuthorization: false,
    tryItOutEnabled: false,
    displayOperationId: true,
  });
});

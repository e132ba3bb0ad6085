// slogate test fixture: fingerprinted asset, served by the proxy, never by Rails.
(function () {
  "use strict";
  var message = "hello from app-abc123.js";
  var padding = "Padding so that precompression actually pays off. ".repeat(4);
  window.slogateFixture = { message: message, padding: padding };
  console.log(message);
})();

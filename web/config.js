// Where the page finds the management API and how it signs people in. This file is the only
// one to change when hosting the page against a deployed stack (see README, "The console").
//
// Local server (`make dev`): the API is on the page's own origin and the local identity
// provider's dev login signs in. Deployed stack, e.g.:
//   window.APIKEYS_CONFIG = {
//     apiBaseUrl: "https://abc123.execute-api.eu-west-1.amazonaws.com/prod",
//     auth: {
//       mode: "cognito",
//       domain: "https://my-console.auth.eu-west-1.amazoncognito.com",
//       clientId: "1example23456789",
//       // redirectUri defaults to this page's URL; it must be one of the app client's callback URLs.
//     },
//     expiryNoticeDays: 7, // the stack's ExpiryNoticeDays (its largest day): "Expires in N days" within it
//   };
window.APIKEYS_CONFIG = {
  apiBaseUrl: "",
  auth: { mode: "local" },
};

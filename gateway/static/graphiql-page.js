// GraphiQL for the settlement gateway: asks for the API token once (kept in this tab's
// sessionStorage), then mounts GraphiQL with a fetcher that sends it on every HTTP request and in
// the WebSocket connection_init payload. GraphiQL mounts (and fetches the schema) only once a token
// the gateway accepts is there, so Docs never shows "Error fetching schema".
(function () {
  "use strict";
  var STORAGE_KEY = "settlement-gateway:token";
  var FIRST_QUERY = [
    "{",
    "  creditMemos(first: 5, sort: {field: AMOUNT, direction: DESC}) {",
    "    totalCount",
    "    nodes {",
    "      number status amount unappliedAmount",
    "      items { nodes { kind amount taxationItems { amount } sourceItem { invoice { number } } } }",
    "      parts { nodes { amount target { __typename ... on Invoice { number balance } } } }",
    "    }",
    "  }",
    "}",
    "",
  ].join("\n");

  var url = window.location.origin + window.location.pathname;
  var subscriptionUrl = url.replace(/^http/, "ws");
  var form = document.getElementById("token-bar");
  var input = document.getElementById("token");
  var status = document.getElementById("token-status");
  var container = document.getElementById("graphiql");
  var root = ReactDOM.createRoot(container);

  function say(text, refused) {
    status.textContent = text;
    status.className = refused ? "refused" : "";
  }

  function waiting() {
    root.render(
      React.createElement(
        "p",
        { id: "waiting" },
        "Enter an API token above: the schema loads as soon as there is one.",
      ),
    );
  }

  function mount(token) {
    var auth = token ? { Authorization: "Bearer " + token } : {};
    var fetcher = GraphiQL.createFetcher({
      url: url,
      subscriptionUrl: subscriptionUrl,
      headers: auth,
      wsConnectionParams: auth,
    });
    root.render(
      React.createElement(GraphiQL, {
        key: token, // a new token mounts a new GraphiQL, which fetches the schema again
        fetcher: fetcher,
        defaultQuery: FIRST_QUERY,
        plugins: [GraphiQLPluginExplorer.explorerPlugin()],
        defaultEditorToolsVisibility: true,
        isHeadersEditorEnabled: true,
        shouldPersistHeaders: false,
        inputValueDeprecation: true,
      }),
    );
  }

  async function accepted(token) {
    var headers = { "Content-Type": "application/json" };
    if (token) {
      headers.Authorization = "Bearer " + token;
    }
    var response = await fetch(url, {
      method: "POST",
      headers: headers,
      body: JSON.stringify({ query: "{ __typename }" }),
    });
    return response.status !== 401;
  }

  async function use(token) {
    say("checking the token…", false);
    if (!(await accepted(token))) {
      sessionStorage.removeItem(STORAGE_KEY);
      say("the gateway refused this token", true);
      waiting();
      return;
    }
    sessionStorage.setItem(STORAGE_KEY, token);
    input.value = "";
    input.placeholder = "token in use (paste another to switch)";
    say("token in use", false);
    mount(token);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var token = input.value.trim().replace(/^Bearer\s+/i, "");
    if (token) {
      use(token);
    }
  });
  document.getElementById("forget-token").addEventListener("click", function () {
    sessionStorage.removeItem(STORAGE_KEY);
    input.placeholder = "paste the token printed by scripts/serve";
    say("", false);
    waiting();
  });

  async function start() {
    var saved = sessionStorage.getItem(STORAGE_KEY);
    if (saved) {
      use(saved);
    } else if (await accepted("")) {
      // a gateway started with --insecure-no-auth: nothing to ask
      say("this gateway needs no token", false);
      mount("");
    } else {
      waiting();
      input.focus();
    }
  }
  start();
})();

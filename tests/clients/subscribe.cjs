// The npm graphql-ws client, as a JavaScript app uses it: one connection (token in
// connectionParams), several subscriptions. Prints one JSON line per event:
//   {"name": <subscription>, "data": ...} | {"name", "errors"} | {"name", "complete": true}
// and {"done": true} once every subscription completed or produced its expected count.
// Usage: node subscribe.cjs <ws url> <token> <json: [{name, query, variables, count?}]>
"use strict";
const { createClient } = require("graphql-ws");
const WebSocket = require("ws");

const [url, token, specJson] = process.argv.slice(2);
const specs = JSON.parse(specJson);
const print = (value) => process.stdout.write(JSON.stringify(value) + "\n");

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${token}` },
  retryAttempts: 0,
  on: { connected: () => print({ connected: true }) },
});

let open = specs.length;
const finished = () => {
  open -= 1;
  if (open === 0) {
    print({ done: true });
    client.dispose();
  }
};

for (const spec of specs) {
  let seen = 0;
  let over = false;
  const end = () => {
    if (!over) {
      over = true;
      finished();
    }
  };
  const unsubscribe = client.subscribe(
    { query: spec.query, variables: spec.variables },
    {
      next: (result) => {
        print({ name: spec.name, ...result });
        seen += 1;
        if (spec.count && seen >= spec.count) {
          unsubscribe();
          end();
        }
      },
      error: (error) => {
        print({ name: spec.name, error: String(error && (error.message || error.reason || error)) });
        process.exitCode = 1;
        end();
      },
      complete: () => {
        print({ name: spec.name, complete: true });
        end();
      },
    },
  );
}

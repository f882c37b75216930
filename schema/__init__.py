"""The GraphQL shape: types, inputs, payloads, scalars and the error mapping."""

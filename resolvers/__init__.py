"""Thin glue between the GraphQL shape and the services: parse, call, translate; and the loaders."""

"""Family accounts: GraphQL types, inputs, errors and loaders (see docs/family.md)."""

"""msgspec Structs for everything that crosses the HTTP boundary, one module per resource."""

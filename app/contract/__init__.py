"""The OpenAPI document as the API's contract: what every route takes and answers."""

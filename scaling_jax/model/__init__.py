"""The OpenLM transformer: config, model, loss, sharding rules and counts."""

"""The participant agent: finds local model servers, joins a room and shares a model."""

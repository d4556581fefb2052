"""Policy files: YAML with positions, the JSON Schema, semantic checks and the frozen policy model."""

package client

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// toolSchema is the part of a tool's JSON Schema inputSchema used to type
// command-line arguments.
type toolSchema struct {
	Properties           map[string]propertySchema `json:"properties"`
	AdditionalProperties *bool                     `json:"additionalProperties"`
}

type propertySchema struct {
	// Type is a string or a list of strings (JSON Schema §6.1.1).
	Type any `json:"type"`
}

func (p propertySchema) primaryType() string {
	switch t := p.Type.(type) {
	case string:
		return t
	case []any:
		for _, v := range t {
			if s, ok := v.(string); ok && s != "null" {
				return s
			}
		}
	}
	return ""
}

// ToolArguments builds a tool call's arguments from --json '{…}' (an
// object) and --arg key=value pairs, converting each value to the type the
// tool's input schema gives the property (integer, number, boolean, array
// or object as JSON, string as is). --arg values win over --json ones.
func ToolArguments(inputSchema any, pairs []string, jsonArgs string) (map[string]any, error) {
	args := map[string]any{}
	if strings.TrimSpace(jsonArgs) != "" {
		if err := json.Unmarshal([]byte(jsonArgs), &args); err != nil || args == nil {
			return nil, fmt.Errorf("--json arguments must be a JSON object: %v", err)
		}
	}
	var schema toolSchema
	if inputSchema != nil {
		raw, err := json.Marshal(inputSchema)
		if err == nil {
			_ = json.Unmarshal(raw, &schema)
		}
	}
	for _, pair := range pairs {
		key, value, ok := strings.Cut(pair, "=")
		if !ok || key == "" {
			return nil, fmt.Errorf("--arg %q: want key=value", pair)
		}
		prop, known := schema.Properties[key]
		if !known && schema.AdditionalProperties != nil && !*schema.AdditionalProperties {
			return nil, fmt.Errorf("--arg %s: the tool has no such argument", key)
		}
		v, err := convertArg(prop.primaryType(), value)
		if err != nil {
			return nil, fmt.Errorf("--arg %s: %w", key, err)
		}
		args[key] = v
	}
	return args, nil
}

func convertArg(typ, value string) (any, error) {
	switch typ {
	case "integer":
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer", value)
		}
		return n, nil
	case "number":
		f, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", value)
		}
		return f, nil
	case "boolean":
		b, err := strconv.ParseBool(value)
		if err != nil {
			return nil, fmt.Errorf("%q is not a boolean", value)
		}
		return b, nil
	case "array", "object":
		var v any
		if err := json.Unmarshal([]byte(value), &v); err != nil {
			return nil, fmt.Errorf("%q is not a JSON %s", value, typ)
		}
		return v, nil
	}
	return value, nil
}

package client

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestToolArgumentsTypedBySchema(t *testing.T) {
	var schema map[string]any
	require.NoError(t, json.Unmarshal([]byte(`{"type":"object","properties":{
		"a":{"type":"integer"},"b":{"type":["number","null"]},"flag":{"type":"boolean"},
		"tags":{"type":"array"},"opts":{"type":"object"},"name":{"type":"string"}}}`), &schema))
	args, err := ToolArguments(schema, []string{"a=5", "b=2.5", "flag=true", `tags=["x","y"]`, `opts={"k":1}`, "name=42", "free=text=with=equals"}, "")
	require.NoError(t, err)
	assert.Equal(t, int64(5), args["a"])
	assert.Equal(t, 2.5, args["b"])
	assert.Equal(t, true, args["flag"])
	assert.Equal(t, []any{"x", "y"}, args["tags"])
	assert.Equal(t, map[string]any{"k": float64(1)}, args["opts"])
	assert.Equal(t, "42", args["name"], "a string stays a string")
	assert.Equal(t, "text=with=equals", args["free"])

	_, err = ToolArguments(schema, []string{"a=x"}, "")
	assert.ErrorContains(t, err, "not an integer")
	_, err = ToolArguments(schema, []string{"novalue"}, "")
	assert.ErrorContains(t, err, "key=value")
}

func TestToolArgumentsJSONAndMerge(t *testing.T) {
	args, err := ToolArguments(nil, []string{"a=override"}, `{"a":1,"b":[1,2]}`)
	require.NoError(t, err)
	assert.Equal(t, "override", args["a"])
	assert.Equal(t, []any{float64(1), float64(2)}, args["b"])

	_, err = ToolArguments(nil, nil, `[1,2]`)
	assert.Error(t, err)

	closed := map[string]any{"properties": map[string]any{"a": map[string]any{"type": "string"}}, "additionalProperties": false}
	_, err = ToolArguments(closed, []string{"zzz=1"}, "")
	assert.ErrorContains(t, err, "no such argument")
}

func TestSplitToolJSON(t *testing.T) {
	rest, tj := splitToolJSON([]string{"call", "x", "--json", `{"a":1}`, "--json"})
	assert.Equal(t, []string{"call", "x", "--json"}, rest)
	assert.Equal(t, `{"a":1}`, tj)
	rest, tj = splitToolJSON([]string{"--json", "tools"})
	assert.Equal(t, []string{"--json", "tools"}, rest)
	assert.Empty(t, tj)
}

func ExampleToolArguments() {
	schema := map[string]any{"properties": map[string]any{
		"a": map[string]any{"type": "number"}, "operation": map[string]any{"type": "string"}}}
	args, _ := ToolArguments(schema, []string{"operation=multiply", "a=6"}, `{"b":7}`)
	fmt.Println(args["operation"], args["a"], args["b"])
	// Output: multiply 6 7
}

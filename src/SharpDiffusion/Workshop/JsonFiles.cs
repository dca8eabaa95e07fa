using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpDiffusion.Workshop;

/// <summary>Config files as diffusers and transformers write them: two-space indented JSON and a final newline.</summary>
internal static class JsonFiles
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, IndentSize = 2 };

    public static void Write(string path, JsonNode value) => File.WriteAllText(path, value.ToJsonString(Indented) + "\n");
}

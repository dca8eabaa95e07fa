using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
using SharpDiffusion.Png;

namespace SharpDiffusion.Cli.Commands;

/// <summary>
/// <c>sharpdiffusion pnginfo FILE [--json]</c>: prints the A1111 "parameters" text of a PNG (exit 2 with a clear
/// message when there is none, or when the file is not a PNG). With --json: every text entry of the PNG and, when present, the parsed parameters.
/// </summary>
internal sealed class PngInfoCommand : ICliCommand
{
    public Command Create(CliContext context)
    {
        var file = new Argument<string>("FILE") { Description = "A PNG image" };
        var json = new Option<bool>("--json") { Description = "Print every text chunk (and the parsed parameters) as JSON" };
        var command = new Command("pnginfo", "Show the generation parameters stored in a PNG");
        command.Arguments.Add(file);
        command.Options.Add(json);
        command.SetAction(result => Run(context, result.GetValue(file)!, result.GetValue(json)));
        return command;
    }

    private static int Run(CliContext context, string path, bool json)
    {
        if (!File.Exists(path)) return context.BadInput($"{path}: no such file");
        IReadOnlyList<PngText> texts;
        try
        {
            texts = PngTextChunks.Read(path);
        }
        catch (PngFormatException e)
        {
            return context.BadInput(e.Message);
        }

        string? parameters = PngTextChunks.Get(texts, A1111Infotext.PngKeyword);
        if (json)
        {
            context.Output.WriteLine(ToJson(path, texts, parameters));
            return ExitCodes.Success;
        }
        if (parameters == null)
        {
            string found = texts.Count == 0 ? "no text entries" : "text entries: " + string.Join(", ", texts.Select(t => t.Keyword));
            return context.BadInput($"{path}: no A1111 generation parameters (PNG has {found})");
        }
        context.Output.WriteLine(parameters);
        return ExitCodes.Success;
    }

    private static string ToJson(string path, IReadOnlyList<PngText> texts, string? parameters)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("path", path);
            w.WriteStartArray("chunks");
            foreach (var t in texts)
            {
                w.WriteStartObject();
                w.WriteString("keyword", t.Keyword);
                w.WriteString("type", t.ChunkType);
                w.WriteString("text", t.Text);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            if (parameters != null)
            {
                var info = A1111Infotext.Parse(parameters);
                w.WriteStartObject("parameters");
                w.WriteString("prompt", info.Prompt);
                w.WriteString("negative_prompt", info.NegativePrompt);
                w.WriteStartObject("settings");
                foreach (var (key, value) in info.Parameters) w.WriteString(key, value);
                w.WriteEndObject();
                w.WriteEndObject();
            }
            else
            {
                w.WriteNull("parameters");
            }
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }
}

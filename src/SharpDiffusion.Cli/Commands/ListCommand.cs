using SharpDiffusion.Architectures;
using System.CommandLine;
using System.Text.Json;
using SharpDiffusion.Cli.Output;
using SharpDiffusion.Formats;
using SharpDiffusion.Hashing;
using SharpDiffusion.Inspection;
using Spectre.Console;

namespace SharpDiffusion.Cli.Commands;

/// <summary>
/// <c>sharpdiffusion list --models-dir DIR [--model M] [--json]</c>: every extra network of an A1111 models folder
/// (LoRA/LyCORIS, embeddings, hypernetworks, VAEs) by kind, base family and short hash; with --model, the ones whose
/// family differs from the checkpoint's are marked incompatible (a family the weights cannot tell is "unknown").
/// </summary>
internal sealed class ListCommand : ICliCommand
{
    private static readonly ModelKind[] ExtraNetworkKinds = { ModelKind.Lora, ModelKind.Embedding, ModelKind.Hypernetwork, ModelKind.Vae };

    public Command Create(CliContext context)
    {
        var modelsDir = new Option<string>("--models-dir") { Description = "A1111 models folder (Lora/, LyCORIS/, embeddings/, hypernetworks/, VAE/)", Required = true };
        var model = new Option<string?>("--model") { Description = "Checkpoint to check compatibility against" };
        var json = new Option<bool>("--json") { Description = "One JSON object per network (JSON Lines)" };
        var command = new Command("list", "List the extra networks of a models folder and their compatibility with a checkpoint");
        command.Options.Add(modelsDir);
        command.Options.Add(model);
        command.Options.Add(json);
        command.SetAction(result => Run(context, result.GetValue(modelsDir)!, result.GetValue(model), result.GetValue(json)));
        return command;
    }

    private static int Run(CliContext context, string modelsDir, string? modelPath, bool json)
    {
        if (!Directory.Exists(modelsDir))
        {
            context.Fail($"{modelsDir}: no such folder");
            return ExitCodes.Usage;
        }
        BaseFamily? checkpointBase = null;
        if (modelPath != null)
        {
            try
            {
                using var file = ModelFileReader.Open(modelPath);
                var verdict = ModelClassifier.Classify(file);
                if (verdict.Kind != ModelKind.Checkpoint) throw new InvalidModelFileException(modelPath, $"is a {verdict.Kind.WireName()}, not a checkpoint");
                checkpointBase = verdict.Base;
            }
            catch (InvalidModelFileException e)
            {
                context.Fail(e.Message);
                return ExitCodes.Usage;
            }
        }

        var cache = new HashCache();
        var inspector = new ModelInspector { ComputeHashes = true, Cache = cache, HashRunner = context.ErrorIsTerminal ? new HashProgress(context.CreateErrorConsole()).Run : null };
        var rows = new List<(ModelReport Report, string Compatibility)>();
        int invalid = 0;
        foreach (var report in inspector.Inspect(modelsDir))
        {
            if (!report.IsValid)
            {
                invalid++;
                context.Fail("warning: " + report.Error);
                continue;
            }
            var c = report.Classification!;
            if (!ExtraNetworkKinds.Contains(c.Kind)) continue;
            rows.Add((report, Compatibility(c, checkpointBase, modelPath != null)));
        }
        cache.Save();

        if (json)
        {
            foreach (var (report, compatibility) in rows)
            {
                var c = report.Classification!;
                context.Output.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
                {
                    ["name"] = Path.GetFileNameWithoutExtension(report.Path),
                    ["path"] = report.Path,
                    ["kind"] = c.Kind.WireName(),
                    ["base"] = c.Base?.WireName(),
                    ["short_hash"] = report.Hashes?.Short,
                    ["compatible"] = compatibility,
                }));
            }
        }
        else
        {
            var table = new Table().AddColumns("Kind", "Name", "Base", "Short hash", "Compatible");
            foreach (var (report, compatibility) in rows.OrderBy(r => r.Report.Classification!.Kind).ThenBy(r => r.Report.Name, StringComparer.OrdinalIgnoreCase))
            {
                var c = report.Classification!;
                table.AddRow(c.Kind.WireName(), Markup.Escape(Path.GetFileNameWithoutExtension(report.Path)), c.Base?.WireName() ?? "",
                    report.Hashes?.Short ?? "", compatibility == "incompatible" ? "[red]incompatible[/]" : compatibility);
            }
            var console = context.CreateOutputConsole();
            console.Write(table);
            console.WriteLine($"{rows.Count} extra networks" + (checkpointBase is { } b ? $", checked against {b.WireName()}" : ""));
        }
        return invalid > 0 ? ExitCodes.SomeInputsInvalid : ExitCodes.Success;
    }

    /// <summary>"yes"/"incompatible" against the checkpoint's family, "unknown" when either family cannot be told, "" without --model.</summary>
    private static string Compatibility(ModelClassification network, BaseFamily? checkpoint, bool checking)
    {
        if (!checking) return "";
        if (checkpoint is not { } model) return "unknown";
        return ModelArchitectures.Fits(network, model) switch
        {
            true => "yes",
            false => "incompatible",
            null => "unknown",
        };
    }
}

using System.CommandLine;
using SharpDiffusion.Cli.Output;
using SharpDiffusion.Hashing;
using SharpDiffusion.Inspection;

namespace SharpDiffusion.Cli.Commands;

/// <summary>
/// <c>sharpdiffusion inspect PATH... [--json] [--hash]</c>: classify every model under the paths. A table grouped by
/// kind (invalid files listed with their error, then a summary), or JSON Lines on stdout with --json.
/// Exit 0 when every model was read, 1 when any was invalid, 2 for bad usage.
/// </summary>
internal sealed class InspectCommand : ICliCommand
{
    public Command Create(CliContext context)
    {
        var paths = new Argument<string[]>("PATH")
        {
            Description = "Model files, diffusers folders, or folders to scan recursively",
            Arity = ArgumentArity.OneOrMore,
        };
        var json = new Option<bool>("--json") { Description = "Write one JSON object per model (JSON Lines) on stdout" };
        var hash = new Option<bool>("--hash") { Description = "Compute sha256, A1111 short and legacy hashes, kohya addnet hash (cached)" };
        var command = new Command("inspect", "Classify model files: kind, base model, components, precision, details");
        command.Arguments.Add(paths);
        command.Options.Add(json);
        command.Options.Add(hash);
        command.SetAction(result => Run(context, result.GetValue(paths) ?? [], result.GetValue(json), result.GetValue(hash)));
        return command;
    }

    private static int Run(CliContext context, string[] paths, bool json, bool hash)
    {
        var missing = paths.Where(p => !File.Exists(p) && !Directory.Exists(p)).ToList();
        if (missing.Count > 0)
        {
            foreach (var p in missing)
                context.Fail(p.StartsWith('-') ? $"unknown option '{p}'" : $"{p}: no such file or folder");
            return ExitCodes.Usage;
        }

        var cache = hash ? new HashCache() : null;
        var inspector = new ModelInspector
        {
            ComputeHashes = hash,
            Cache = cache,
            HashRunner = context.ErrorIsTerminal ? new HashProgress(context.CreateErrorConsole(), HashProgress.DefaultThresholdBytes).Run : null,
        };

        int invalid = 0;
        var reports = new List<ModelReport>();
        foreach (var report in inspector.Inspect(paths))
        {
            if (!report.IsValid) invalid++;
            if (json)
            {
                JsonReportWriter.WriteLine(context.Output, report);
                context.Output.Flush();
            }
            else
            {
                reports.Add(report);
            }
        }
        if (cache != null && !cache.Save()) context.Fail($"could not write the hash cache {cache.CacheFile}");

        if (!json) InspectTable.Render(context.CreateOutputConsole(), reports, hash);
        return invalid > 0 ? ExitCodes.SomeInputsInvalid : ExitCodes.Success;
    }
}

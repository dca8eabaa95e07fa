using System.CommandLine;
using SharpDiffusion.Cli.Commands;

namespace SharpDiffusion.Cli;

/// <summary>
/// The <c>sharpdiffusion</c> entry point, callable in-process with any writers (tests capture stdout/stderr).
/// To add a verb, write an <see cref="ICliCommand"/> in Commands/ and list it in <see cref="Commands"/>.
/// </summary>
internal static class CliApp
{
    private static readonly ICliCommand[] Commands =
    [
        new InspectCommand(),
        new PngInfoCommand(),
        new GenerateCommand(),
        new ExtractLoraCommand(),
        new ResizeLoraCommand(),
        new MergeCommand(),
        new ConvertCommand(),
        new DevCommand(),
        new BenchCommand(),
        new ListCommand(),
        new BakeCommand(),
        new UpscaleCommand(),
        new ServeCommand(),
        new WorkerCommand(),
        new TrainCommand(),
    ];

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, bool stderrIsTerminal = false) =>
        Run(args, stdout, stderr, stderrIsTerminal, Commands);

    /// <summary>Runs <paramref name="args"/> against <paramref name="commands"/> (tests add a command that fails on purpose).</summary>
    internal static int Run(string[] args, TextWriter stdout, TextWriter stderr, bool stderrIsTerminal, IReadOnlyList<ICliCommand> commands)
    {
        var context = new CliContext(stdout, stderr, stderrIsTerminal);
        var root = new RootCommand("SharpDiffusion: read, classify and explain Stable Diffusion model files.");
        foreach (var command in commands) root.Subcommands.Add(command.Create(context));

        // No response files: "@name" is a perfectly good model path, not a list of arguments to expand.
        var parsed = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        if (parsed.Errors.Count > 0)
        {
            foreach (var error in parsed.Errors) context.Fail(error.Message);
            stderr.WriteLine("Run 'sharpdiffusion --help' for usage.");
            return ExitCodes.Usage;
        }
        if (parsed.Action == null)
        {
            context.Fail($"no command given ({string.Join(", ", root.Subcommands.Select(c => c.Name))}). Run 'sharpdiffusion --help' for usage.");
            return ExitCodes.Usage;
        }
        try
        {
            return parsed.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false });
        }
        catch (Exception e) when (ExitCodes.IsBadInput(e))
        {
            // Bad input that a command did not word itself (an unwritable output, a file that went away): still one line.
            return context.BadInput(e.Message);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A bug, not bad input: one line, no stack dump, and the way to get it fixed.
            context.Fail($"internal error: {e.GetType().Name}: {e.Message} (this is a bug: please report it with the command line)");
            return ExitCodes.InternalError;
        }
    }
}

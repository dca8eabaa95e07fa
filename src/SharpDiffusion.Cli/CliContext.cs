using Spectre.Console;

namespace SharpDiffusion.Cli;

/// <summary>Where a command writes: stdout for results, stderr for progress and errors.</summary>
internal sealed class CliContext(TextWriter output, TextWriter error, bool errorIsTerminal)
{
    public TextWriter Output { get; } = output;
    public TextWriter Error { get; } = error;

    /// <summary>Progress bars only make sense on a terminal.</summary>
    public bool ErrorIsTerminal { get; } = errorIsTerminal;

    /// <summary>A Spectre console over stdout: colours only when stdout is the real, unredirected console.</summary>
    public IAnsiConsole CreateOutputConsole() => CreateConsole(Output, ReferenceEquals(Output, Console.Out) && !Console.IsOutputRedirected);

    public IAnsiConsole CreateErrorConsole() => CreateConsole(Error, ErrorIsTerminal);

    private static IAnsiConsole CreateConsole(TextWriter writer, bool terminal)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(writer),
            Ansi = terminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = terminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = terminal ? InteractionSupport.Detect : InteractionSupport.No,
        });
        // Captured output is read by programs and tests: give tables room instead of wrapping at 80 columns.
        if (!terminal) console.Profile.Width = 200;
        return console;
    }

    /// <summary>A one-line error on stderr, prefixed with the program name.</summary>
    public void Fail(string message) => Error.WriteLine("sharpdiffusion: " + message);

    /// <summary>A one-line error for bad usage or a bad input the command cannot work with; returns <see cref="ExitCodes.Usage"/>.</summary>
    public int BadInput(string message)
    {
        Fail(message);
        return ExitCodes.Usage;
    }
}

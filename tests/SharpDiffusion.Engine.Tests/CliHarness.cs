using SharpDiffusion.Cli;

namespace SharpDiffusion.Engine.Tests;

/// <summary>Runs the <c>sharpdiffusion</c> command in-process with captured output (no terminal).</summary>
internal static class CliHarness
{
    public static (int Code, string Stdout, string Stderr) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CliApp.Run(args, stdout, stderr, stderrIsTerminal: false);
        return (code, stdout.ToString(), stderr.ToString());
    }
}

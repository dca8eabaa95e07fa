using System.CommandLine;

namespace SharpDiffusion.Cli;

/// <summary>One verb of the <c>sharpdiffusion</c> command (inspect, pnginfo, ...): one class per file under Commands/.</summary>
internal interface ICliCommand
{
    Command Create(CliContext context);
}

using System.CommandLine;
using System.Security.Cryptography;
using SharpDiffusion.Cli;

namespace SharpDiffusion.Engine.Tests.Cli;

/// <summary>
/// The exit-code table and the output rules, across commands: the same bad file gives the same code everywhere (2 where
/// the command cannot go on, 1 only for scans), an output never replaces an input and never creates a folder, and an
/// unexpected exception is exit 3 with a request to report it.
/// </summary>
public sealed class BoundaryPolicyTests : IDisposable
{
    private const string Bad = "{bad}", Out = "{out}", Dir = "{dir}";
    private static readonly string TinySd1 = TestPaths.GoldenFile("tiny_sd1.safetensors");
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static (int Code, string Stdout, string Stderr) Run(params string[] args) => Run(args, null);

    private static (int Code, string Stdout, string Stderr) Run(string[] args, IReadOnlyList<ICliCommand>? commands)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = commands == null
            ? CliApp.Run(args, stdout, stderr, stderrIsTerminal: false)
            : CliApp.Run(args, stdout, stderr, stderrIsTerminal: false, commands);
        return (code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>A truncated safetensors file: the header length runs past the end.</summary>
    private string WriteBrokenModel()
    {
        string path = _dir.File("broken.safetensors");
        var bytes = new byte[64];
        BitConverter.TryWriteBytes(bytes, 5000L);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    public static TheoryData<string[]> CommandsThatNeedTheFile() => new()
    {
        new[] { "generate", "--model", Bad, "--prompt", "a cat", "--out", Out + ".png" },
        new[] { "merge", "--model-a", Bad, "--model-b", TinySd1, "--multiplier", "0.5", "--out", Out + ".safetensors" },
        new[] { "convert", Bad, "--out", Out + ".safetensors" },
        new[] { "bake", "--model", Bad, "--vae", TinySd1, "--out", Out + ".safetensors" },
        new[] { "extract-lora", "--base", Bad, "--tuned", TinySd1, "--rank", "2", "--out", Out + ".safetensors" },
        new[] { "resize-lora", Bad, "--rank", "2", "--out", Out + ".safetensors" },
        new[] { "list", "--models-dir", Dir, "--model", Bad },
        new[] { "dev", "precision-drift", "--model", Bad },
        new[] { "pnginfo", Bad },
    };

    [Theory]
    [MemberData(nameof(CommandsThatNeedTheFile))]
    public void A_bad_input_file_is_exit_2_in_one_line_in_every_command_that_needs_it(string[] template)
    {
        string bad = WriteBrokenModel();
        var args = template.Select(a => a.Replace(Bad, bad).Replace(Out, _dir.File("out")).Replace(Dir, _dir.Path)).ToArray();

        var (code, _, stderr) = Run(args);

        Assert.True(code == ExitCodes.Usage, $"{template[0]}: exit {code}, {stderr}");
        // One error line (dev tools may print progress before it), never a stack trace.
        string line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("sharpdiffusion: ", StringComparison.Ordinal));
        Assert.Contains("broken.safetensors", line);
        Assert.DoesNotContain("   at ", stderr);
        Assert.Equal([bad], Directory.GetFileSystemEntries(_dir.Path)); // nothing written, no temporary left
    }

    [Fact]
    public void The_same_bad_file_in_a_scan_is_exit_1_and_the_scan_goes_on()
    {
        string bad = WriteBrokenModel();
        File.Copy(TinySd1, _dir.File("tiny.safetensors"));

        var (code, stdout, stderr) = Run("inspect", "--json", _dir.Path);

        Assert.True(code == ExitCodes.SomeInputsInvalid, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.Contains("\"error\"", lines[0]);
        Assert.Contains(Path.GetFileName(bad), lines[0]);
        Assert.Contains("\"kind\":\"checkpoint\"", lines[1]);
    }

    public static TheoryData<string, string[]> OutputsOntoInputs() => new()
    {
        { "model-a", new[] { "merge", "--model-a", "{model}", "--model-b", "{model2}", "--multiplier", "0.5", "--out", "{model}" } },
        { "model-b", new[] { "merge", "--model-a", "{model}", "--model-b", "{model2}", "--multiplier", "0.5", "--out", "{model2}" } },
        { "input", new[] { "convert", "{model}", "--out", "{model}" } },
        { "checkpoint", new[] { "bake", "--model", "{model}", "--lora", "{lora}", "--out", "{model}" } },
        { "lora", new[] { "bake", "--model", "{model}", "--lora", "{lora}:0.5", "--out", "{lora}" } },
        { "vae", new[] { "bake", "--model", "{model}", "--vae", "{model2}", "--out", "{model2}" } },
        { "tuned", new[] { "extract-lora", "--base", "{model}", "--tuned", "{model2}", "--rank", "2", "--out", "{model2}" } },
        { "lora", new[] { "resize-lora", "{lora}", "--rank", "2", "--out", "{lora}" } },
        { "init image", new[] { "generate", "--model", "{model}", "--prompt", "a cat", "--init-image", "{png}", "--out", "{png}" } },
        { "checkpoint", new[] { "generate", "--model", "{model}", "--prompt", "a cat", "--out", "{dir}", "--save-latents", "{model}" } },
    };

    [Theory]
    [MemberData(nameof(OutputsOntoInputs))]
    public void An_output_never_replaces_an_input(string which, string[] template)
    {
        var files = new Dictionary<string, string>
        {
            ["{model}"] = _dir.File("model.safetensors"),
            ["{model2}"] = _dir.File("model2.safetensors"),
            ["{lora}"] = _dir.File("lora.safetensors"),
            ["{png}"] = _dir.File("init.png"),
        };
        File.Copy(TinySd1, files["{model}"]);
        File.Copy(TinySd1, files["{model2}"]);
        File.WriteAllBytes(files["{lora}"], [1, 2, 3]); // refused before it is read
        File.WriteAllBytes(files["{png}"], [4, 5, 6]);
        var before = files.Values.ToDictionary(f => f, f => SHA256.HashData(File.ReadAllBytes(f)));
        var args = template.Select(a =>
        {
            foreach (var (placeholder, path) in files) a = a.Replace(placeholder, path);
            return a.Replace(Dir, _dir.File("images"));
        }).ToArray();

        var (code, _, stderr) = Run(args);

        Assert.True(code == ExitCodes.Usage, $"{template[0]} ({which}): exit {code}, {stderr}");
        Assert.Contains("would overwrite the input", stderr);
        foreach (var (file, hash) in before) Assert.Equal(hash, SHA256.HashData(File.ReadAllBytes(file)));
        Assert.Equal(files.Count, Directory.GetFileSystemEntries(_dir.Path).Length);
    }

    public static TheoryData<string[]> OutputsInMissingFolders() => new()
    {
        new[] { "generate", "--model", TinySd1, "--prompt", "a cat", "--out", "{dir}/x.jpg" },
        new[] { "generate", "--model", TinySd1, "--prompt", "a cat", "--out", "{dir}/missing/x.png" },
        new[] { "generate", "--model", TinySd1, "--prompt", "a cat", "--out", "{dir}/missing/images" },
        new[] { "generate", "--model", TinySd1, "--prompt", "a cat", "--out", "{dir}/images", "--save-latents", "{dir}/missing/l.safetensors" },
        new[] { "dev", "random-model", "--arch", "sd15", "--out", "{dir}/missing/r.safetensors" },
        new[] { "merge", "--model-a", TinySd1, "--model-b", TinySd1, "--multiplier", "0.5", "--out", "{dir}/missing/m.safetensors" },
        new[] { "convert", TinySd1, "--out", "{dir}/missing/c.safetensors" },
        new[] { "bake", "--model", TinySd1, "--vae", TinySd1, "--out", "{dir}/missing/b.safetensors" },
        new[] { "extract-lora", "--base", TinySd1, "--tuned", TinySd1, "--rank", "2", "--out", "{dir}/missing/e.safetensors" },
    };

    [Theory]
    [MemberData(nameof(OutputsInMissingFolders))]
    public void An_output_path_never_makes_a_folder(string[] template)
    {
        var args = template.Select(a => a.Replace(Dir, _dir.Path)).ToArray();

        var (code, _, stderr) = Run(args);

        Assert.True(code == ExitCodes.Usage, $"{string.Join(' ', template.Take(2))}: exit {code}, {stderr}");
        Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Empty(Directory.GetFileSystemEntries(_dir.Path));
    }

    [Fact]
    public void An_unexpected_exception_is_exit_3_with_a_request_to_report_it()
    {
        var (code, stdout, stderr) = Run(["fail"], [new ThrowingCommand(new InvalidOperationException("index out of step"))]);

        Assert.Equal(ExitCodes.InternalError, code);
        Assert.Equal("", stdout);
        Assert.Equal("sharpdiffusion: internal error: InvalidOperationException: index out of step "
            + "(this is a bug: please report it with the command line)", stderr.TrimEnd('\n'));
    }

    [Fact]
    public void An_unreadable_file_that_reaches_the_boundary_is_exit_2_not_a_bug()
    {
        var (code, _, stderr) = Run(["fail"], [new ThrowingCommand(new UnauthorizedAccessException("Access to the path '/x/out.png' is denied."))]);

        Assert.Equal(ExitCodes.Usage, code);
        Assert.Equal("sharpdiffusion: Access to the path '/x/out.png' is denied.", stderr.TrimEnd('\n'));
    }

    private sealed class ThrowingCommand(Exception exception) : ICliCommand
    {
        public Command Create(CliContext context)
        {
            var command = new Command("fail", "throws");
            command.SetAction(new Func<ParseResult, int>(_ => throw exception));
            return command;
        }
    }
}

using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Torch;
using SharpDiffusion.Tests.Fixtures.Torch;

namespace SharpDiffusion.Tests.Formats.Pickle;

/// <summary>
/// Hostile pickles: every global outside the allow-list stops the read with its name in the message, and the
/// command each payload carries (creating a marker file) provably never ran.
/// </summary>
public class PickleSecurityTests
{
    /// <summary>Pickle fragments that each push one value, built from a forbidden global and a marker command.</summary>
    private static byte[] Payload(string kind, string marker)
    {
        string cmd = $"touch '{marker}'";
        var w = new PickleWriter();
        switch (kind)
        {
            case "os.system":
                w.Op((byte)'c').Ascii("os\nsystem\n").Mark().Str(cmd).Tuple().Reduce();
                break;
            case "posix.system":
                w.Op((byte)'c').Ascii("posix\nsystem\n").Str(cmd).Tuple1().Reduce();
                break;
            case "nt.system":
                w.Op((byte)'c').Ascii("nt\nsystem\n").Str(cmd).Tuple1().Reduce();
                break;
            case "builtins.eval":
                w.Str("builtins").Str("eval").Op(0x93).Str($"__import__('os').system(\"{cmd}\")").Tuple1().Reduce();
                break;
            case "builtins.exec":
                w.Str("builtins").Str("exec").Op(0x93).Str($"import os; os.system(\"{cmd}\")").Tuple1().Reduce();
                break;
            case "__builtin__.eval":
                w.Op((byte)'c').Ascii("__builtin__\neval\n").Str($"__import__('os').system(\"{cmd}\")").Tuple1().Reduce();
                break;
            case "builtins.getattr":
                w.Op((byte)'c').Ascii("builtins\ngetattr\n").Op((byte)'c').Ascii("collections\nOrderedDict\n").Str("__init__").Tuple2().Reduce();
                break;
            case "subprocess.Popen":
                w.Op((byte)'c').Ascii("subprocess\nPopen\n").Mark().EmptyList().Mark().Str("touch").Str(marker).Appends().Tuple().Reduce();
                break;
            case "webbrowser.open":
                w.Op((byte)'c').Ascii("webbrowser\nopen\n").Str("http://example.invalid/").Tuple1().Reduce();
                break;
            case "os.system (INST)":
                w.Mark().Str(cmd).Op((byte)'i').Ascii("os\nsystem\n");
                break;
            case "os.system (OBJ)":
                w.Mark().Op((byte)'c').Ascii("os\nsystem\n").Str(cmd).Op((byte)'o');
                break;
            case "os.system (NEWOBJ)":
                w.Op((byte)'c').Ascii("os\nsystem\n").Str(cmd).Tuple1().Op(0x81);
                break;
            case "torch.load":
                w.Op((byte)'c').Ascii("torch\nload\n").Str(marker).Tuple1().Reduce();
                break;
            default:
                throw new ArgumentException(kind);
        }
        return w.ToArray();
    }

    public static TheoryData<string, bool> Cases()
    {
        var data = new TheoryData<string, bool>();
        foreach (var kind in new[]
                 {
                     "os.system", "posix.system", "nt.system", "builtins.eval", "builtins.exec", "__builtin__.eval", "builtins.getattr",
                     "subprocess.Popen", "webbrowser.open", "os.system (INST)", "os.system (OBJ)", "os.system (NEWOBJ)", "torch.load",
                 })
        {
            data.Add(kind, true);
            data.Add(kind, false);
        }
        return data;
    }

    private static string GlobalName(string kind) => kind.Split(' ')[0];

    [Theory]
    [MemberData(nameof(Cases))]
    public void ForbiddenGlobalInsideAStateDictFailsAndRunsNothing(string kind, bool zip)
    {
        using var dir = new TempDir();
        string marker = dir.File("pwned");
        string path = dir.File("evil.ckpt");
        var fx = TorchFixtures.SdCheckpoint();
        var root = (FixtureDict)fx.Root!;
        var sd = (FixtureDict)root.Single(e => e.Key is "state_dict").Value!;
        // Hidden deep: a list inside a tuple inside a dict, after real tensors.
        sd.Add("cond_stage_model.extra", new FixtureTuple(1L, new List<object?> { "a", new FixtureDict { { "x", new FixtureRawPickle(Payload(kind, marker)) } } }));
        new TorchFixtures.Fixture(root, fx.Storages).Write(path, zip);

        var e = Assert.Throws<InvalidModelFileException>(() => TorchFile.Open(path).Dispose());
        Assert.Contains($"refuses to load global '{GlobalName(kind)}'", e.Message);
        Assert.StartsWith(path + ": ", e.Message);
        Assert.False(File.Exists(marker));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ForbiddenGlobalAsTheWholeObjectFails(bool zip)
    {
        using var dir = new TempDir();
        string marker = dir.File("pwned");
        string path = dir.File("evil.pt");
        new TorchFixtures.Fixture(new FixtureRawPickle(Payload("os.system", marker)), new()).Write(path, zip);
        var e = Assert.Throws<InvalidModelFileException>(() => TorchFile.Open(path).Dispose());
        Assert.Contains("refuses to load global 'os.system'", e.Problem);
        Assert.False(File.Exists(marker));
    }

    [Fact]
    public void ForbiddenGlobalInTheLegacySysInfoFails()
    {
        using var dir = new TempDir();
        string marker = dir.File("pwned");
        string path = dir.File("evil.pt");
        var magic = new PickleWriter().Proto(2).Long(TorchFixtureWriter.LegacyMagic).Stop().ToArray();
        var proto = TorchPickler.PickleValue(1001L);
        var sysInfo = new PickleWriter().Proto(2).Raw(Payload("posix.system", marker)).Stop().ToArray();
        File.WriteAllBytes(path, [.. magic, .. proto, .. sysInfo]);
        var e = Assert.Throws<InvalidModelFileException>(() => TorchFile.Open(path).Dispose());
        Assert.Contains("refuses to load global 'posix.system'", e.Problem);
        Assert.False(File.Exists(marker));
    }

    [Fact]
    public void AllowedNamesCannotBeMisused()
    {
        using var dir = new TempDir();
        string path = dir.File("misuse.pt");
        // Calling a storage class (torch.FloatStorage(...)) is not something a checkpoint needs.
        var call = new PickleWriter().Op((byte)'c').Ascii("torch\nFloatStorage\n").Int(1_000_000_000).Tuple1().Reduce().ToArray();
        new TorchFixtures.Fixture(new FixtureDict { { "x", new FixtureRawPickle(call) } }, new()).Write(path, zip: true);
        var e = Assert.Throws<InvalidModelFileException>(() => TorchFile.Open(path).Dispose());
        Assert.Contains("'torch.FloatStorage' cannot be called", e.Problem);
    }
}

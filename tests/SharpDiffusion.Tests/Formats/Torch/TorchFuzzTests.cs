using System.Diagnostics;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Torch;
using SharpDiffusion.Tests.Fixtures.Torch;
using Xunit.Abstractions;

namespace SharpDiffusion.Tests.Formats.Torch;

/// <summary>
/// Seeded mutation fuzzing of valid zip and legacy files: flipped bytes, truncation, corrupted pickle opcodes,
/// spliced chunks. Opening and reading every tensor may only ever fail with InvalidModelFileException.
/// </summary>
public class TorchFuzzTests(ITestOutputHelper output)
{
    private const int IterationsPerFile = 900;

    /// <summary>Opcodes worth injecting: containers, memo, calls and length-prefixed data.</summary>
    private static readonly byte[] Opcodes =
    [
        (byte)'(', (byte)'.', (byte)'0', (byte)'1', (byte)'2', (byte)'R', (byte)'b', (byte)'e', (byte)'u', (byte)'s', (byte)'a', (byte)'t',
        (byte)'h', (byte)'j', (byte)'q', (byte)'r', (byte)'Q', (byte)'X', (byte)'B', (byte)'c', (byte)'i', (byte)'o', (byte)'}', (byte)']', (byte)')',
        0x81, 0x85, 0x86, 0x87, 0x8a, 0x8b, 0x8d, 0x8e, 0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96,
    ];

    public static TheoryData<string, int> Seeds => new() { { "zip", 1 }, { "legacy", 2 }, { "zip-views", 3 }, { "legacy-hypernetwork", 4 } };

    [Theory]
    [MemberData(nameof(Seeds))]
    public void MutatedFilesOnlyEverFailCleanly(string kind, int seed)
    {
        using var dir = new TempDir();
        string original = dir.File("original.pt");
        var fx = kind switch
        {
            "zip-views" => TorchFixtures.Views(),
            "legacy-hypernetwork" => TorchFixtures.Hypernetwork(floatLayerStructure: true),
            _ => TorchFixtures.SdCheckpoint(),
        };
        fx.Write(original, zip: kind.StartsWith("zip", StringComparison.Ordinal));
        var valid = File.ReadAllBytes(original);
        ReadEverything(original); // the unmutated file must read

        var rng = new Random(seed);
        string path = dir.File("mutant.pt");
        int rejected = 0, accepted = 0;
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < IterationsPerFile; i++)
        {
            var mutant = Mutate(valid, rng);
            File.WriteAllBytes(path, mutant);
            try
            {
                ReadEverything(path);
                accepted++;
            }
            catch (InvalidModelFileException)
            {
                rejected++;
            }
            catch (Exception e)
            {
                File.WriteAllBytes(dir.File("crash.pt"), mutant);
                Assert.Fail($"{kind} seed {seed} iteration {i}: {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            }
        }
        output.WriteLine($"{kind}: {IterationsPerFile} mutants, {rejected} rejected, {accepted} read, {clock.ElapsedMilliseconds} ms");
        Assert.True(rejected > IterationsPerFile / 4, $"only {rejected} of {IterationsPerFile} mutants were rejected");
    }

    private static void ReadEverything(string path)
    {
        using var f = TorchFile.Open(path);
        foreach (var t in f.Tensors)
        {
            var buffer = new byte[t.ByteLength];
            f.ReadTensorData(t, buffer);
        }
    }

    private static byte[] Mutate(byte[] valid, Random rng)
    {
        var b = (byte[])valid.Clone();
        // Most structure (pickle, zip headers of the first members) sits in the first part of these small files.
        int Hot() => rng.Next(3) == 0 ? rng.Next(b.Length) : rng.Next(Math.Min(b.Length, 700));
        switch (rng.Next(6))
        {
            case 0:
                for (int n = rng.Next(1, 9); n > 0; n--) b[Hot()] ^= (byte)(1 << rng.Next(8));
                return b;
            case 1:
                for (int n = rng.Next(1, 4); n > 0; n--) b[Hot()] = (byte)rng.Next(256);
                return b;
            case 2:
                return b[..rng.Next(b.Length)];
            case 3:
                for (int n = rng.Next(1, 4); n > 0; n--) b[Hot()] = Opcodes[rng.Next(Opcodes.Length)];
                return b;
            case 4:
            {
                // Length fields: plant a large little-endian number.
                int at = Hot();
                var big = BitConverter.GetBytes(rng.Next(2) == 0 ? int.MaxValue - rng.Next(100) : rng.Next(1 << 20));
                for (int k = 0; k < 4 && at + k < b.Length; k++) b[at + k] = big[k];
                return b;
            }
            default:
            {
                // Splice: copy a chunk of the file over another place.
                int len = rng.Next(1, 64);
                int from = rng.Next(Math.Max(1, b.Length - len));
                int to = Hot();
                for (int k = 0; k < len && from + k < b.Length && to + k < b.Length; k++) b[to + k] = valid[from + k];
                return b;
            }
        }
    }
}

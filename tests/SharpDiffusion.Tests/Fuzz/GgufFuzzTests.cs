using Xunit.Abstractions;
using SharpDiffusion.Formats.Gguf;
using SharpDiffusion.Tests.Formats.Gguf;

namespace SharpDiffusion.Tests.Fuzz;

public class GgufFuzzTests(ITestOutputHelper output)
{
    private const int Iterations = 3000;

    /// <summary>A small valid file with every value type, arrays (long, nested), custom alignment and quantized tensors.</summary>
    private static byte[] SeedFile() => new GgufTestWriter()
        .String("general.architecture", "stable-diffusion")
        .SetAlignment(64)
        .UInt8("u8", 7).Int16("i16", -5).UInt64("u64", 1UL << 40).Float32("f32", 0.5f).Float64("f64", 2.25).Bool("flag", true)
        .StringArray("tokens", Enumerable.Range(0, 40).Select(i => "t" + i).ToList())
        .Int32Array("small", 1, 2, 3)
        .Array("nested", GgufValueType.Array, 2, w =>
        {
            GgufTestWriter.WriteArrayBody(w, GgufValueType.UInt16, 2, x => { x.Write((ushort)1); x.Write((ushort)2); });
            GgufTestWriter.WriteArrayBody(w, GgufValueType.String, 1, x => GgufTestWriter.WriteString(x, "s"));
        })
        .Tensor("model.diffusion_model.input_blocks.0.0.weight", GgmlType.F16, [8, 4, 3, 3])
        .Tensor("model.diffusion_model.input_blocks.0.0.bias", GgmlType.F32, [8])
        .Tensor("model.diffusion_model.input_blocks.1.1.proj_in.weight", GgmlType.Q8_0, [4, 64])
        .Tensor("model.diffusion_model.out.2.weight", GgmlType.Q4_K, [2, 256])
        .Tensor("scalar", GgmlType.I32, [])
        .Build();

    [Fact]
    public void MutatedFilesOnlyEverThrowInvalidModelFile()
    {
        using var dir = new TempDir();
        var seed = SeedFile();
        string seedPath = dir.File("seed.gguf");
        File.WriteAllBytes(seedPath, seed);
        int headerEnd;
        using (var valid = GgufFile.Open(seedPath)) headerEnd = (int)valid.DataStart;

        Mutation Mutate(Random random)
        {
            string d;
            switch (random.Next(6))
            {
                case 0:
                case 1: return new(FuzzHarness.FlipBytes(random, seed, headerEnd, out d), d);
                case 2: return new(FuzzHarness.Truncate(random, seed, out d), d);
                case 3: return new(FuzzHarness.Extend(random, seed, out d), d);
                case 4:
                {
                    // An 8-byte count, length, dimension or offset field (wherever it lands) gets a hostile value.
                    var bytes = (byte[])seed.Clone();
                    int at = random.Next(8, headerEnd - 8);
                    ulong value = FuzzHarness.HostileNumber(random, BitConverter.ToUInt64(bytes, at));
                    BitConverter.TryWriteBytes(bytes.AsSpan(at), value);
                    return new(bytes, $"uint64 at {at} = {value}");
                }
                default:
                {
                    // A 4-byte type field (value type, array element type, ggml type, n_dims) gets a small value.
                    var bytes = (byte[])seed.Clone();
                    int at = random.Next(4, headerEnd - 4);
                    uint value = (uint)random.Next(48);
                    BitConverter.TryWriteBytes(bytes.AsSpan(at), value);
                    return new(bytes, $"uint32 at {at} = {value}");
                }
            }
        }

        var outcome = FuzzHarness.Run(dir.File("mutant.gguf"), Iterations, new Random(29112026), Mutate, GgufFile.Open);
        output.WriteLine($"{Iterations} mutations: {outcome.Accepted} opened and read, {outcome.Rejected} rejected as invalid");
        FuzzHarness.AssertClean(outcome, Iterations);
    }
}

using Xunit.Abstractions;
using System.Text;
using System.Text.RegularExpressions;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;

namespace SharpDiffusion.Tests.Fuzz;

public class SafetensorsFuzzTests(ITestOutputHelper output)
{
    private const int Iterations = 3000;

    private static readonly string[] DTypeNames =
        ["F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2", "Q4_0", "F128", "", "f32", "F3"];

    private static readonly string[] Insertions =
        ["{", "}", "[", "]", "\"", ",", ":", "-", "0", "9", "e", ".", " ", "\\", "\\u0000", "\\ud800", "\\udc00", "null", "true", "1e400", "{\"a\":", "\u00e9", "\ud83d\ude00"];

    /// <summary>A small valid file with every dtype, metadata, an empty tensor and a scalar.</summary>
    private static byte[] SeedFile(TempDir dir)
    {
        string path = dir.File("seed.safetensors");
        var tensors = new List<TensorToWrite>();
        var dtypes = new[] { TensorDType.F32, TensorDType.F16, TensorDType.BF16, TensorDType.I64, TensorDType.U8, TensorDType.Bool, TensorDType.F8_E4M3, TensorDType.F64 };
        for (int i = 0; i < dtypes.Length; i++)
        {
            long[] shape = [i + 1, 3];
            var data = new byte[(i + 1) * 3 * dtypes[i].ElementSize()];
            new Random(i).NextBytes(data);
            tensors.Add(TensorToWrite.FromBytes($"model.diffusion_model.layer{i}.weight", dtypes[i], shape, data));
        }
        tensors.Add(TensorToWrite.FromBytes("empty", TensorDType.F32, [0, 4], ReadOnlyMemory<byte>.Empty));
        tensors.Add(TensorToWrite.FromBytes("scalar", TensorDType.I32, [], BitConverter.GetBytes(42)));
        SafetensorsWriter.Write(path, tensors, new Dictionary<string, string> { ["format"] = "pt", ["ss_network_dim"] = "8" });
        return File.ReadAllBytes(path);
    }

    [Fact]
    public void MutatedFilesOnlyEverThrowInvalidModelFile()
    {
        using var dir = new TempDir();
        var seed = SeedFile(dir);
        int headerLength = (int)BitConverter.ToUInt64(seed, 0);
        string header = Encoding.UTF8.GetString(seed, 8, headerLength);
        var data = seed[(8 + headerLength)..];

        Mutation Mutate(Random random)
        {
            string d;
            switch (random.Next(9))
            {
                case 0: return new(FuzzHarness.FlipBytes(random, seed, 8 + headerLength, out d), d);
                case 1: return new(FuzzHarness.Truncate(random, seed, out d), d);
                case 2: return new(FuzzHarness.Extend(random, seed, out d), d);
                case 3:
                {
                    var bytes = (byte[])seed.Clone();
                    ulong length = FuzzHarness.HostileNumber(random, (ulong)headerLength);
                    BitConverter.TryWriteBytes(bytes.AsSpan(0, 8), length);
                    return new(bytes, $"header length field = {length}");
                }
                default:
                    var (text, what) = EditHeader(random, header);
                    bool fixLength = random.Next(5) != 0;
                    var newHeader = Encoding.UTF8.GetBytes(text);
                    var file = new byte[8 + newHeader.Length + data.Length];
                    BitConverter.TryWriteBytes(file.AsSpan(0, 8), fixLength ? (ulong)newHeader.Length : (ulong)headerLength);
                    newHeader.CopyTo(file, 8);
                    data.CopyTo(file, 8 + newHeader.Length);
                    return new(file, what + (fixLength ? "" : " (length field not updated)"));
            }
        }

        var outcome = FuzzHarness.Run(dir.File("mutant.safetensors"), Iterations, new Random(20261129), Mutate, SafetensorsFile.Open);
        output.WriteLine($"{Iterations} mutations: {outcome.Accepted} opened and read, {outcome.Rejected} rejected as invalid");
        FuzzHarness.AssertClean(outcome, Iterations);
    }

    private static (string Text, string Description) EditHeader(Random random, string header)
    {
        int edits = random.Next(1, 4);
        var what = new List<string>();
        for (int e = 0; e < edits; e++)
        {
            switch (random.Next(5))
            {
                case 0:
                {
                    var numbers = Regex.Matches(header, "-?[0-9]+");
                    var m = numbers[random.Next(numbers.Count)];
                    ulong.TryParse(m.Value, out ulong original);
                    string replacement = random.Next(6) switch
                    {
                        0 => "-" + m.Value,
                        1 => m.Value + ".5",
                        2 => "1e3",
                        3 => "99999999999999999999999999",
                        _ => FuzzHarness.HostileNumber(random, original).ToString(),
                    };
                    header = header[..m.Index] + replacement + header[(m.Index + m.Length)..];
                    what.Add($"number at {m.Index} {m.Value}->{replacement}");
                    break;
                }
                case 1:
                {
                    int at = random.Next(header.Length);
                    int count = Math.Min(random.Next(1, 6), header.Length - at);
                    what.Add($"delete {count} chars at {at} '{header.Substring(at, count)}'");
                    header = header.Remove(at, count);
                    break;
                }
                case 2:
                {
                    int at = random.Next(header.Length + 1);
                    string insert = Insertions[random.Next(Insertions.Length)];
                    header = header.Insert(at, insert);
                    what.Add($"insert '{insert}' at {at}");
                    break;
                }
                case 3:
                {
                    var dtypes = Regex.Matches(header, "\"dtype\":\"([A-Z0-9_]+)\"");
                    var m = dtypes[random.Next(dtypes.Count)].Groups[1];
                    string other = DTypeNames[random.Next(DTypeNames.Length)];
                    header = header[..m.Index] + other + header[(m.Index + m.Length)..];
                    what.Add($"dtype {m.Value}->{other}");
                    break;
                }
                default:
                {
                    // Duplicate a slice elsewhere: repeated keys, unbalanced structure, nested objects.
                    int from = random.Next(header.Length);
                    int count = Math.Min(random.Next(1, 80), header.Length - from);
                    int at = random.Next(header.Length + 1);
                    header = header.Insert(at, header.Substring(from, count));
                    what.Add($"copy {count} chars from {at} to {from}");
                    break;
                }
            }
        }
        return (header, "header edit: " + string.Join("; ", what));
    }
}

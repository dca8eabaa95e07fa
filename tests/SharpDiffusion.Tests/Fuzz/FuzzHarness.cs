using SharpDiffusion.Formats;

namespace SharpDiffusion.Tests.Fuzz;

/// <summary>A mutated file and a description of what was done to it (reported when it breaks the reader).</summary>
internal readonly record struct Mutation(byte[] Bytes, string Description);

/// <summary>
/// Opens many mutated copies of a valid file and reads every tensor of each; the only exception allowed out of
/// the reader is <see cref="InvalidModelFileException"/> with a one-line message naming the file.
/// </summary>
internal static class FuzzHarness
{
    public sealed record Outcome(int Accepted, int Rejected, List<string> Failures);

    public static Outcome Run(string path, int iterations, Random random, Func<Random, Mutation> mutate, Func<string, IModelFile> open)
    {
        int accepted = 0, rejected = 0;
        var failures = new List<string>();
        for (int i = 0; i < iterations; i++)
        {
            var mutation = mutate(random);
            File.WriteAllBytes(path, mutation.Bytes);
            try
            {
                using var file = open(path);
                foreach (var tensor in file.Tensors)
                {
                    if (tensor.ByteLength > file.SizeBytes)
                        throw new InvalidOperationException($"tensor '{tensor.Name}' claims {tensor.ByteLength} bytes in a {file.SizeBytes}-byte file");
                    file.ReadTensorData(tensor, new byte[tensor.ByteLength]);
                }
                accepted++;
            }
            catch (InvalidModelFileException e)
            {
                rejected++;
                if (e.FilePath != path || e.Message.Contains('\n') || e.Message.Contains('\r'))
                    failures.Add($"#{i} {mutation.Description}: message not one line naming the file: {e.Message}");
            }
            catch (Exception e)
            {
                failures.Add($"#{i} {mutation.Description}: {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}");
            }
        }
        return new Outcome(accepted, rejected, failures);
    }

    public static void AssertClean(Outcome outcome, int iterations)
    {
        Assert.True(outcome.Failures.Count == 0,
            $"{outcome.Failures.Count} of {iterations} mutations escaped as other exceptions:\n" + string.Join("\n", outcome.Failures.Take(15)));
        // Both outcomes must occur, or the mutations are not exercising the validation.
        Assert.InRange(outcome.Accepted, 1, iterations);
        Assert.InRange(outcome.Rejected, iterations / 4, iterations);
    }

    public static byte[] FlipBytes(Random random, byte[] source, int regionEnd, out string description)
    {
        var bytes = (byte[])source.Clone();
        int flips = random.Next(1, 9);
        var positions = new List<string>();
        for (int f = 0; f < flips; f++)
        {
            int end = random.Next(4) == 0 ? bytes.Length : Math.Min(regionEnd, bytes.Length);
            int at = random.Next(end);
            byte value = (byte)random.Next(256);
            positions.Add($"{at}=0x{value:X2}");
            bytes[at] = value;
        }
        description = "set bytes " + string.Join(",", positions);
        return bytes;
    }

    public static byte[] Truncate(Random random, byte[] source, out string description)
    {
        int length = random.Next(source.Length);
        description = $"truncate to {length} bytes";
        return source[..length];
    }

    public static byte[] Extend(Random random, byte[] source, out string description)
    {
        int extra = random.Next(1, 200);
        var bytes = new byte[source.Length + extra];
        source.CopyTo(bytes, 0);
        random.NextBytes(bytes.AsSpan(source.Length));
        description = $"append {extra} random bytes";
        return bytes;
    }

    /// <summary>Values that break length and offset fields: extremes, off-by-one, sign flips.</summary>
    public static ulong HostileNumber(Random random, ulong original) => random.Next(10) switch
    {
        0 => ulong.MaxValue,
        1 => long.MaxValue,
        2 => (ulong)long.MaxValue + 1,
        3 => 0,
        4 => original + 1,
        5 => original - 1,
        6 => original * 2,
        7 => 1UL << random.Next(64),
        8 => (ulong)random.NextInt64(),
        _ => original + (ulong)random.Next(1, 4096),
    };
}

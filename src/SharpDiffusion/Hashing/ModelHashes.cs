using System.Buffers.Binary;
using System.Security.Cryptography;

namespace SharpDiffusion.Hashing;

/// <summary>
/// The hashes Stable Diffusion tools use to name a model file, all computed in one streamed read:
/// <list type="bullet">
/// <item><see cref="Sha256"/>: of the whole file (A1111 "new" hash, Civitai).</item>
/// <item><see cref="Short"/>: its first 10 hex digits (A1111's "Model hash" in infotexts).</item>
/// <item><see cref="Legacy"/>: A1111's old <c>model_hash</c>: sha256 of the 64 KiB at offset 1 MiB, first 8 hex digits.
///   Like A1111 it hashes whatever that slice holds: fewer bytes for a short file, none below 1 MiB
///   (then it is the empty input's hash, e3b0c442).</item>
/// <item><see cref="AddNet"/>: kohya / sd-webui-additional-networks <c>addnet_hash_safetensors</c>: sha256 of the bytes
///   after the 8-byte length and the header, i.e. the tensor data, so it ignores metadata edits. Null for files that
///   are not safetensors.</item>
/// </list>
/// Hex digits are lower case. A diffusers folder has no single-file hashes: hash its weight files one by one.
/// </summary>
public sealed record ModelHashes(string Sha256, string Legacy, string? AddNet)
{
    public const long LegacyOffset = 0x100000;
    public const int LegacyLength = 0x10000;

    /// <summary>Read buffer: large enough that the disk, not the syscalls, sets the pace.</summary>
    public const int BufferSize = 4 * 1024 * 1024;

    public string Short => Sha256[..10];

    /// <summary>Hashes a file in one pass. <paramref name="progress"/> receives the bytes read so far.</summary>
    public static ModelHashes Compute(string path, IProgress<long>? progress = null, CancellationToken cancellation = default)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        return Compute(stream, progress, cancellation);
    }

    /// <summary>Hashes a stream from its current position to its end (the position counts as offset 0).</summary>
    public static ModelHashes Compute(Stream stream, IProgress<long>? progress = null, CancellationToken cancellation = default)
    {
        using var full = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var legacy = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        IncrementalHash? addnet = null;
        long addnetStart = -1;
        var buffer = new byte[BufferSize];
        long size = stream.CanSeek ? stream.Length - stream.Position : long.MaxValue;
        long offset = 0;
        try
        {
            while (true)
            {
                cancellation.ThrowIfCancellationRequested();
                int read = stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
                if (read == 0) break;
                var chunk = new ReadOnlyMemory<byte>(buffer, 0, read);
                if (offset == 0 && TryGetSafetensorsDataStart(chunk.Span, size, out addnetStart))
                    addnet = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

                var legacySlice = Slice(chunk, offset, LegacyOffset, LegacyOffset + LegacyLength);
                if (!legacySlice.IsEmpty) legacy.AppendData(legacySlice.Span);
                var addnetSlice = addnet == null ? ReadOnlyMemory<byte>.Empty : Slice(chunk, offset, addnetStart, long.MaxValue);
                if (addnetSlice.IsEmpty) full.AppendData(chunk.Span);
                else Parallel.Invoke(() => full.AppendData(chunk.Span), () => addnet!.AppendData(addnetSlice.Span));

                offset += read;
                progress?.Report(offset);
            }
            return new ModelHashes(Hex(full), Hex(legacy)[..8], addnet == null ? null : Hex(addnet));
        }
        finally
        {
            addnet?.Dispose();
        }
    }

    /// <summary>
    /// The part of <paramref name="chunk"/> (which starts at file offset <paramref name="chunkStart"/>) that lies in
    /// [<paramref name="from"/>, <paramref name="to"/>).
    /// </summary>
    private static ReadOnlyMemory<byte> Slice(ReadOnlyMemory<byte> chunk, long chunkStart, long from, long to)
    {
        long start = Math.Max(from, chunkStart), end = Math.Min(to, chunkStart + chunk.Length);
        return end <= start ? ReadOnlyMemory<byte>.Empty : chunk.Slice((int)(start - chunkStart), (int)(end - start));
    }

    /// <summary>A safetensors file starts with its header length and a JSON object that fits in the file.</summary>
    private static bool TryGetSafetensorsDataStart(ReadOnlySpan<byte> head, long size, out long dataStart)
    {
        dataStart = -1;
        if (head.Length < 9 || head[8] != (byte)'{') return false;
        ulong headerLen = BinaryPrimitives.ReadUInt64LittleEndian(head);
        if (headerLen < 2 || headerLen > (ulong)(size - 8)) return false;
        dataStart = 8 + (long)headerLen;
        return true;
    }

    private static string Hex(IncrementalHash hash) => Convert.ToHexStringLower(hash.GetHashAndReset());
}

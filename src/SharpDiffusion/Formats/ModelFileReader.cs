using System.Buffers.Binary;
using System.Text;
using SharpDiffusion.Formats.Diffusers;
using SharpDiffusion.Formats.Safetensors;

namespace SharpDiffusion.Formats;

/// <summary>
/// Opens any supported model by looking at its content, never at its extension alone: a folder is a diffusers
/// model (or one diffusers component); a file is recognised from its first bytes.
/// </summary>
public static class ModelFileReader
{
    /// <summary>Enough to recognise every format, and to quote a text file's first words.</summary>
    private const int SniffBytes = 64;

    public static IModelFile Open(string path)
    {
        if (Directory.Exists(path))
        {
            if (!DiffusersFolder.IsDiffusersFolder(path))
                throw new InvalidModelFileException(path, "folder holds no model (neither model_index.json nor a diffusers component: config.json with weights)");
            return DiffusersFolder.Open(path);
        }
        if (!File.Exists(path)) throw new InvalidModelFileException(path, "no such file or folder");
        return Sniff(path) switch
        {
            DetectedContent.Safetensors => SafetensorsFile.Open(path),
            DetectedContent.Torch => OpenTorch(path),
            DetectedContent.Gguf => OpenGguf(path),
            _ => throw new InvalidModelFileException(path, "not a model file: " + DescribeUnknown(path)),
        };
    }

    /// <summary>What the first bytes of a file say it is.</summary>
    public static DetectedContent Sniff(string path)
    {
        var (head, size) = ReadHead(path);
        return Sniff(head, size);
    }

    internal static DetectedContent Sniff(ReadOnlySpan<byte> head, long size)
    {
        if (head.Length >= 9)
        {
            ulong headerLen = BinaryPrimitives.ReadUInt64LittleEndian(head);
            if (head[8] == (byte)'{' && headerLen >= 2 && headerLen <= (ulong)(size - 8)) return DetectedContent.Safetensors;
        }
        if (head.Length >= 4 && head[0] == (byte)'P' && head[1] == (byte)'K' && head[2] == 3 && head[3] == 4) return DetectedContent.Torch;
        // A pickle stream begins with the PROTO opcode (0x80) and a protocol number; torch's legacy format is a pickle.
        if (head.Length >= 2 && head[0] == 0x80 && head[1] is >= 2 and <= 5) return DetectedContent.Torch;
        if (head.Length >= 4 && head[..4].SequenceEqual("GGUF"u8)) return DetectedContent.Gguf;
        return DetectedContent.Unknown;
    }

    // ---- Readers provided by other parts of the library. ----

    /// <summary>Torch (.ckpt/.pt/.pth/.bin: zip or legacy pickle), read by our allow-list unpickler.</summary>
    private static IModelFile OpenTorch(string path) => Torch.TorchFile.Open(path);

    /// <summary>GGUF (stable-diffusion.cpp quantized models): header, key/values and tensor records.</summary>
    private static IModelFile OpenGguf(string path) => Gguf.GgufFile.Open(path);

    // ---- Describing what an unrecognised file looks like. ----

    private static (byte[] Head, long Size) ReadHead(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
            var head = new byte[(int)Math.Min(SniffBytes, stream.Length)];
            stream.ReadExactly(head);
            return (head, stream.Length);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidModelFileException(path, "cannot open: " + e.Message, e);
        }
    }

    private static string DescribeUnknown(string path)
    {
        var (head, size) = ReadHead(path);
        if (size == 0) return "the file is empty";
        return DescribeHead(head, size);
    }

    internal static string DescribeHead(ReadOnlySpan<byte> head, long size)
    {
        string hex = Convert.ToHexString(head[..Math.Min(8, head.Length)]).ToLowerInvariant();
        hex = string.Join(' ', Enumerable.Range(0, hex.Length / 2).Select(i => hex.Substring(i * 2, 2)));
        string guess = GuessKind(head, size);
        return $"first bytes {hex} look like {guess}";
    }

    private static string GuessKind(ReadOnlySpan<byte> head, long size)
    {
        if (head.Length >= 9 && head[8] == (byte)'{' && BinaryPrimitives.ReadUInt64LittleEndian(head) < SafetensorsFile.MaxHeaderBytes)
            return $"a safetensors header whose length runs past the end of the file ({size} bytes; truncated download?)";
        if (head.Length >= 2 && head[0] == 0x1f && head[1] == 0x8b) return "gzip data";
        if (head.Length >= 8 && head[..8].SequenceEqual(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0d, 0x0a, 0x1a, 0x0a })) return "a PNG image";
        if (head.Length >= 3 && head[0] == 0xff && head[1] == 0xd8 && head[2] == 0xff) return "a JPEG image";
        if (head.Length >= 4 && head[..4].SequenceEqual("\u007fELF"u8)) return "an executable (ELF)";
        if (head.Length >= 2 && head[0] == 0x80) return "a pickle with an unsupported protocol";
        string text = Encoding.UTF8.GetString(head).TrimStart('\uFEFF').TrimStart();
        if (text.StartsWith("version https://git-lfs", StringComparison.Ordinal)) return "a Git LFS pointer (the weights were not downloaded)";
        if (text.StartsWith('<')) return "HTML or XML text (a web page saved instead of the model?)";
        if (text.StartsWith('{') || text.StartsWith('[')) return "JSON text";
        if (IsText(text)) return "text";
        return "no known model format";
    }

    /// <summary>No control characters other than line breaks and tabs (a cut multi-byte character at the end is fine).</summary>
    private static bool IsText(string text) =>
        text.Length > 0 && text.All(c => !char.IsControl(c) || c is '\n' or '\r' or '\t');
}

/// <summary>The container type recognised from a file's first bytes.</summary>
public enum DetectedContent
{
    Unknown,
    Safetensors,
    /// <summary>torch.save output: a zip archive or a legacy pickle stream.</summary>
    Torch,
    Gguf,
}

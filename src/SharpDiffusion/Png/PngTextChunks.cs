using System.IO.Compression;
using System.Text;

namespace SharpDiffusion.Png;

/// <summary>
/// Reads the text chunks of a PNG (tEXt, zTXt, iTXt) and writes or replaces one entry. Writing stores Latin-1
/// text as tEXt and anything else as uncompressed iTXt (UTF-8), as Pillow's <c>PngInfo.add_text</c> does for
/// A1111; the new chunk goes before the first IDAT and replaces every earlier chunk with that keyword.
/// </summary>
public static class PngTextChunks
{
    private static readonly Encoding Latin1 = Encoding.Latin1;

    public static IReadOnlyList<PngText> Read(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new PngFormatException(path, "cannot read: " + e.Message, e);
        }
        return Read(bytes, path);
    }

    public static IReadOnlyList<PngText> Read(ReadOnlySpan<byte> png, string source = "PNG data")
    {
        var result = new List<PngText>();
        foreach (var chunk in PngChunk.ReadAll(png, source))
        {
            var text = chunk.Type switch
            {
                "tEXt" => DecodeText(chunk.Data, source),
                "zTXt" => DecodeCompressedText(chunk.Data, source),
                "iTXt" => DecodeInternationalText(chunk.Data, source),
                _ => null,
            };
            if (text != null) result.Add(text);
        }
        return result;
    }

    /// <summary>The text stored under <paramref name="keyword"/> (first match), or null.</summary>
    public static string? Get(IReadOnlyList<PngText> texts, string keyword) =>
        texts.FirstOrDefault(t => t.Keyword == keyword)?.Text;

    /// <summary>Returns a copy of <paramref name="png"/> whose <paramref name="keyword"/> entry holds <paramref name="text"/>.</summary>
    public static byte[] SetText(ReadOnlySpan<byte> png, string keyword, string text, string source = "PNG data")
    {
        var chunk = CreateTextChunk(keyword, text);
        var chunks = PngChunk.ReadAll(png, source);
        chunks.RemoveAll(c => c.Type is "tEXt" or "zTXt" or "iTXt" && KeywordOf(c.Data) == keyword);
        int firstData = chunks.FindIndex(c => c.Type == "IDAT");
        chunks.Insert(firstData < 0 ? chunks.Count - 1 : firstData, chunk);
        return PngChunk.Assemble(chunks);
    }

    /// <summary>
    /// Writes <paramref name="input"/> with the entry set to <paramref name="output"/> (which may be the same file)
    /// through a temporary file in the output's folder and a rename.
    /// </summary>
    public static void SetText(string input, string output, string keyword, string text)
    {
        byte[] updated = SetText(File.ReadAllBytes(input), keyword, text, input);
        AtomicFile.WriteAllBytes(output, updated);
    }

    /// <summary>A tEXt chunk when the text is Latin-1, else an uncompressed iTXt chunk.</summary>
    public static PngChunk CreateTextChunk(string keyword, string text)
    {
        ValidateKeyword(keyword);
        if (IsLatin1(text))
        {
            var data = new byte[keyword.Length + 1 + text.Length];
            Latin1.GetBytes(keyword, data);
            Latin1.GetBytes(text, data.AsSpan(keyword.Length + 1));
            return new PngChunk("tEXt", data);
        }
        using var ms = new MemoryStream();
        ms.Write(Latin1.GetBytes(keyword));
        ms.Write([0, 0, 0]); // separator, compression flag 0, compression method 0
        ms.WriteByte(0); // empty language tag
        ms.WriteByte(0); // empty translated keyword
        ms.Write(Encoding.UTF8.GetBytes(text));
        return new PngChunk("iTXt", ms.ToArray());
    }

    /// <summary>PNG keywords: 1-79 Latin-1 printable characters, no leading/trailing/double spaces.</summary>
    public static void ValidateKeyword(string keyword)
    {
        if (keyword.Length is < 1 or > 79) throw new ArgumentException($"PNG keyword must be 1-79 characters, got {keyword.Length}", nameof(keyword));
        foreach (char c in keyword)
            if (c is < (char)32 or > (char)126 and < (char)161 or > (char)255)
                throw new ArgumentException($"PNG keyword '{keyword}' has a character outside printable Latin-1", nameof(keyword));
        if (keyword.StartsWith(' ') || keyword.EndsWith(' ') || keyword.Contains("  ", StringComparison.Ordinal))
            throw new ArgumentException($"PNG keyword '{keyword}' has leading, trailing or consecutive spaces", nameof(keyword));
    }

    private static bool IsLatin1(string text)
    {
        foreach (char c in text) if (c > 0xFF) return false;
        return true;
    }

    private static string? KeywordOf(byte[] data)
    {
        int nul = Array.IndexOf(data, (byte)0);
        return nul < 0 ? null : Latin1.GetString(data, 0, nul);
    }

    private static PngText DecodeText(byte[] data, string source)
    {
        int nul = Array.IndexOf(data, (byte)0);
        if (nul < 1) throw new PngFormatException(source, "tEXt chunk without a keyword");
        return new PngText(Latin1.GetString(data, 0, nul), Latin1.GetString(data, nul + 1, data.Length - nul - 1), "tEXt");
    }

    private static PngText DecodeCompressedText(byte[] data, string source)
    {
        int nul = Array.IndexOf(data, (byte)0);
        if (nul < 1 || nul + 1 >= data.Length) throw new PngFormatException(source, "zTXt chunk without a keyword or compression method");
        if (data[nul + 1] != 0) throw new PngFormatException(source, $"zTXt chunk uses unknown compression method {data[nul + 1]}");
        byte[] text = Inflate(data.AsSpan(nul + 2), source, "zTXt");
        return new PngText(Latin1.GetString(data, 0, nul), Latin1.GetString(text), "zTXt");
    }

    private static PngText DecodeInternationalText(byte[] data, string source)
    {
        int nul = Array.IndexOf(data, (byte)0);
        if (nul < 1 || nul + 3 > data.Length) throw new PngFormatException(source, "iTXt chunk without a keyword");
        bool compressed = data[nul + 1] != 0;
        if (compressed && data[nul + 2] != 0) throw new PngFormatException(source, $"iTXt chunk uses unknown compression method {data[nul + 2]}");
        int langStart = nul + 3;
        int langEnd = Array.IndexOf(data, (byte)0, langStart);
        if (langEnd < 0) throw new PngFormatException(source, "iTXt chunk: unterminated language tag");
        int transEnd = Array.IndexOf(data, (byte)0, langEnd + 1);
        if (transEnd < 0) throw new PngFormatException(source, "iTXt chunk: unterminated translated keyword");
        var body = data.AsSpan(transEnd + 1);
        string text = Encoding.UTF8.GetString(compressed ? Inflate(body, source, "iTXt") : body);
        return new PngText(Latin1.GetString(data, 0, nul), text, "iTXt")
        {
            LanguageTag = Encoding.ASCII.GetString(data, langStart, langEnd - langStart),
            TranslatedKeyword = Encoding.UTF8.GetString(data, langEnd + 1, transEnd - langEnd - 1),
        };
    }

    private static byte[] Inflate(ReadOnlySpan<byte> compressed, string source, string chunkType)
    {
        try
        {
            using var input = new MemoryStream(compressed.ToArray());
            using var zlib = new ZLibStream(input, CompressionMode.Decompress);
            using var output = new MemoryStream();
            zlib.CopyTo(output);
            return output.ToArray();
        }
        catch (InvalidDataException e)
        {
            throw new PngFormatException(source, $"{chunkType} chunk holds corrupt compressed text", e);
        }
    }
}

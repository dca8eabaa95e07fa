namespace SharpDiffusion.Png;

/// <summary>A text entry of a PNG: keyword, text, and the chunk type that held it (tEXt, zTXt or iTXt).</summary>
public sealed record PngText(string Keyword, string Text, string ChunkType = "tEXt")
{
    /// <summary>iTXt only: the language tag and translated keyword (empty when absent).</summary>
    public string LanguageTag { get; init; } = "";
    public string TranslatedKeyword { get; init; } = "";
}

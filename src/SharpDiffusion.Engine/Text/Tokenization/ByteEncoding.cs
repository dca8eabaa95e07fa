namespace SharpDiffusion.Engine.Text.Tokenization;

/// <summary>GPT-2/CLIP <c>bytes_to_unicode</c>: each byte maps to a printable character so BPE works on text.</summary>
internal static class ByteEncoding
{
    /// <summary>Symbol of each byte value 0..255.</summary>
    public static readonly string[] ByteToSymbol = Build();

    /// <summary>The 256 symbols in <c>bytes_to_unicode</c> order (printable ranges first, then the rest), the order of the vocabulary.</summary>
    public static readonly string[] Symbols = BuildOrder();

    private static List<int> PrintableBytes()
    {
        var bs = new List<int>();
        for (int b = '!'; b <= '~'; b++) bs.Add(b);
        for (int b = 0xA1; b <= 0xAC; b++) bs.Add(b);
        for (int b = 0xAE; b <= 0xFF; b++) bs.Add(b);
        return bs;
    }

    private static string[] Build()
    {
        var map = new string[256];
        var printable = PrintableBytes();
        foreach (var b in printable) map[b] = ((char)b).ToString();
        int n = 0;
        for (int b = 0; b < 256; b++)
        {
            if (map[b] != null) continue;
            map[b] = ((char)(256 + n)).ToString();
            n++;
        }
        return map;
    }

    private static string[] BuildOrder()
    {
        var printable = PrintableBytes();
        var order = new List<int>(printable);
        for (int b = 0; b < 256; b++) if (!printable.Contains(b)) order.Add(b);
        return order.Select(b => ByteToSymbol[b]).ToArray();
    }
}

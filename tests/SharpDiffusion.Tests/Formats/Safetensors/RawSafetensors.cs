using System.Text;

namespace SharpDiffusion.Tests.Formats.Safetensors;

/// <summary>Builds safetensors bytes by hand (any header text, any length field) to test the reader on bad input.</summary>
internal static class RawSafetensors
{
    public static byte[] Build(string headerJson, int dataBytes, ulong? headerLengthField = null)
    {
        var header = Encoding.UTF8.GetBytes(headerJson);
        return Build(header, dataBytes, headerLengthField);
    }

    public static byte[] Build(byte[] header, int dataBytes, ulong? headerLengthField = null)
    {
        var bytes = new byte[8 + header.Length + dataBytes];
        BitConverter.TryWriteBytes(bytes.AsSpan(0, 8), headerLengthField ?? (ulong)header.Length);
        header.CopyTo(bytes, 8);
        for (int i = 0; i < dataBytes; i++) bytes[8 + header.Length + i] = (byte)(i * 7 + 1);
        return bytes;
    }

    public static string Write(TempDir dir, string headerJson, int dataBytes, ulong? headerLengthField = null)
    {
        string path = dir.File("model.safetensors");
        File.WriteAllBytes(path, Build(headerJson, dataBytes, headerLengthField));
        return path;
    }
}

using System.Text;
using System.Text.Json;
using SharpDiffusion.Engine.Tests.Hypernetworks;
using SharpDiffusion.Formats;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Embeddings;

/// <summary>Writes small .safetensors files for tests (8-byte header length, JSON header padded to 8, raw data).</summary>
internal static class SafetensorsTestWriter
{
    public static void Write(string path, IEnumerable<(string Name, Tensor Value)> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var header = new Dictionary<string, object>();
        if (metadata is not null) header["__metadata__"] = metadata;
        var data = new MemoryStream();
        foreach (var (name, value) in tensors)
        {
            using var c = value.detach().cpu().contiguous();
            long begin = data.Length;
            data.Write(c.bytes);
            header[name] = new
            {
                dtype = InMemoryModelFile.DType(c).SafetensorsName(),
                shape = c.shape,
                data_offsets = new[] { begin, data.Length },
            };
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        int padded = (json.Length + 7) / 8 * 8;
        using var file = File.Create(path);
        file.Write(BitConverter.GetBytes((long)padded));
        file.Write(json);
        for (int i = json.Length; i < padded; i++) file.WriteByte((byte)' ');
        data.Position = 0;
        data.CopyTo(file);
    }
}

using System.Globalization;
using System.Text.RegularExpressions;
using SharpDiffusion.Engine.Models;
using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Upscaling;

/// <summary>Which naming an RRDBNet file uses.</summary>
public enum RrdbKeyLayout
{
    /// <summary>BasicSR / Real-ESRGAN: <c>conv_first</c>, <c>body.N.rdbK.convM</c>, <c>conv_body</c>, <c>conv_up1</c>, ...</summary>
    BasicSR,

    /// <summary>xinntao/ESRGAN 2019: <c>conv_first</c>, <c>RRDB_trunk.N.RDBK.convM</c>, <c>trunk_conv</c>, <c>upconv1</c>, <c>HRconv</c>, ...</summary>
    Esrgan2019,

    /// <summary>Original ESRGAN 2018 (and spandrel's saves): <c>model.0</c>, <c>model.1.sub.N.RDBK.convM.0</c>, <c>model.3</c>, ...</summary>
    EsrganOriginal,
}

/// <summary>
/// An ESRGAN / Real-ESRGAN upscaler file loaded into an <see cref="RrdbNet"/>: the key layout and every
/// hyper-parameter are read from the weights; every tensor must be used, none may be missing. Torch files go
/// through the library's allow-list unpickler (<see cref="ModelFileReader"/>); safetensors work as well.
/// </summary>
public sealed class UpscalerModel : IDisposable
{
    private UpscalerModel(RrdbNet network, RrdbKeyLayout layout, string path)
    {
        Network = network;
        Layout = layout;
        Path = path;
    }

    public RrdbNet Network { get; }
    public RrdbKeyLayout Layout { get; }
    public string Path { get; }
    public RrdbNetConfig Config => Network.Config;
    public int Scale => Config.Scale;

    /// <summary>The network's element type (float32, or bfloat16 with the narrow-convolution workaround).</summary>
    public ScalarType DType => Network.parameters().First().dtype;

    /// <summary>A network built in memory (benchmarks: random weights of a given size), named by <paramref name="description"/>.</summary>
    public static UpscalerModel FromNetwork(RrdbNet network, string description) => new(network, RrdbKeyLayout.BasicSR, description);

    /// <summary>Loads <paramref name="path"/>; not an RRDBNet upscaler, or weights that do not fit: <see cref="InvalidModelFileException"/>.</summary>
    public static UpscalerModel Load(string path, ScalarType dtype = ScalarType.Float32)
    {
        if (dtype is not (ScalarType.Float32 or ScalarType.BFloat16))
            throw new ArgumentException($"upscaler precision must be float32 or bfloat16, not {dtype}");
        using var file = ModelFileReader.Open(path);
        var (layout, mapped) = MapKeys(file);
        var config = DetectConfig(path, mapped);
        var network = new RrdbNet(config, LayerFactory.ForLoading(CPU, dtype));
        try
        {
            MappedStrictLoader.Load(network, file, mapped, config.ToString());
        }
        catch (ModelLoadException e)
        {
            network.Dispose();
            throw new InvalidModelFileException(path, e.Message, e);
        }
        catch
        {
            network.Dispose();
            throw;
        }
        return new UpscalerModel(network, layout, path);
    }

    /// <summary>Model input [B, C, H, W] in [0, 1] (float32) -> float32 output, raw. Runs in the network's dtype.</summary>
    public Tensor Forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var input = x.dtype == DType ? x : x.to(DType);
        return Network.Forward(input).to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    public void Dispose() => Network.Dispose();

    // ---- Key layouts ----

    /// <summary>
    /// The layout and, for each tensor, its BasicSR name. BasicSR release files nest the weights under
    /// <c>params_ema</c> (preferred, as A1111/spandrel do) or <c>params</c>.
    /// </summary>
    internal static (RrdbKeyLayout Layout, Dictionary<string, TensorInfo> Mapped) MapKeys(IModelFile file)
    {
        string prefix = "";
        if (file.Tensors.Any(t => t.Name.StartsWith("params_ema.", StringComparison.Ordinal))) prefix = "params_ema.";
        else if (file.Tensors.Any(t => t.Name.StartsWith("params.", StringComparison.Ordinal))) prefix = "params.";
        var names = file.Tensors.Where(t => t.Name.StartsWith(prefix, StringComparison.Ordinal))
            .ToDictionary(t => t.Name[prefix.Length..], t => t, StringComparer.Ordinal);

        RrdbKeyLayout layout;
        Func<string, string?> rename;
        if (names.ContainsKey("conv_first.weight") && names.Keys.Any(k => k.StartsWith("body.0.rdb1.", StringComparison.Ordinal)))
        {
            layout = RrdbKeyLayout.BasicSR;
            rename = k => k;
        }
        else if (names.ContainsKey("conv_first.weight") && names.Keys.Any(k => k.StartsWith("RRDB_trunk.0.RDB1.", StringComparison.Ordinal)))
        {
            layout = RrdbKeyLayout.Esrgan2019;
            rename = Esrgan2019Name;
        }
        else if (names.ContainsKey("model.0.weight") && names.Keys.Any(k => k.StartsWith("model.1.sub.0.RDB1.", StringComparison.Ordinal)))
        {
            layout = RrdbKeyLayout.EsrganOriginal;
            rename = OriginalNameMap(names.Keys);
        }
        else
        {
            throw new InvalidModelFileException(file.Path, "not an ESRGAN/Real-ESRGAN RRDBNet upscaler (no conv_first + body.0.rdb1, RRDB_trunk or model.1.sub.0.RDB1 weights)");
        }

        var mapped = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
        foreach (var (name, info) in names)
        {
            string target = rename(name) ?? throw new InvalidModelFileException(file.Path, $"unexpected tensor '{prefix}{name}' in an RRDBNet ({layout}) upscaler");
            mapped[target] = info;
        }
        return (layout, mapped);
    }

    private static readonly Regex TrunkKey = new(@"^RRDB_trunk\.(\d+)\.RDB(\d)\.(conv\d\.(?:weight|bias))$", RegexOptions.CultureInvariant);
    private static readonly Regex UpconvKey = new(@"^upconv(\d+)\.(weight|bias)$", RegexOptions.CultureInvariant);
    private static readonly Regex OldSubKey = new(@"^model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)$", RegexOptions.CultureInvariant);
    private static readonly Regex OldTopKey = new(@"^model\.(\d+)\.(weight|bias)$", RegexOptions.CultureInvariant);
    private static readonly Regex OldSubConvKey = new(@"^model\.1\.sub\.(\d+)\.(weight|bias)$", RegexOptions.CultureInvariant);

    private static string? Esrgan2019Name(string key)
    {
        var m = TrunkKey.Match(key);
        if (m.Success) return $"body.{m.Groups[1].Value}.rdb{m.Groups[2].Value}.{m.Groups[3].Value}";
        m = UpconvKey.Match(key);
        if (m.Success) return $"conv_up{m.Groups[1].Value}.{m.Groups[2].Value}";
        if (key.StartsWith("trunk_conv.", StringComparison.Ordinal)) return "conv_body." + key["trunk_conv.".Length..];
        if (key.StartsWith("HRconv.", StringComparison.Ordinal)) return "conv_hr." + key["HRconv.".Length..];
        if (key.StartsWith("conv_first.", StringComparison.Ordinal) || key.StartsWith("conv_last.", StringComparison.Ordinal)) return key;
        return null;
    }

    /// <summary>
    /// Original ESRGAN: <c>model.0</c> first conv; <c>model.1</c> the shortcut block (<c>sub.0..N-1</c> RRDBs, <c>sub.N</c>
    /// the trunk conv); then (Upsample, conv, LeakyReLU) per x2 stage, so upsampling convs at 3, 6, ...; finally the HR
    /// conv at last−2 and the last conv at the highest index.
    /// </summary>
    private static Func<string, string?> OriginalNameMap(IEnumerable<string> keys)
    {
        var topIndices = keys.Select(k => OldTopKey.Match(k)).Where(m => m.Success)
            .Select(m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).Distinct().Order().ToList();
        int last = topIndices.Count > 0 ? topIndices[^1] : -1;
        int hr = last - 2;
        var subConvIndices = keys.Select(k => OldSubConvKey.Match(k)).Where(m => m.Success)
            .Select(m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).Distinct().ToList();
        int trunkConv = subConvIndices.Count == 1 ? subConvIndices[0] : -1;
        return key =>
        {
            var m = OldSubKey.Match(key);
            if (m.Success) return $"body.{m.Groups[1].Value}.rdb{m.Groups[2].Value}.conv{m.Groups[3].Value}.{m.Groups[4].Value}";
            m = OldSubConvKey.Match(key);
            if (m.Success) return int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) == trunkConv ? "conv_body." + m.Groups[2].Value : null;
            m = OldTopKey.Match(key);
            if (!m.Success) return null;
            int index = int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            string suffix = m.Groups[2].Value;
            if (index == 0) return "conv_first." + suffix;
            if (index == last) return "conv_last." + suffix;
            if (index == hr) return "conv_hr." + suffix;
            if (index >= 3 && index < hr && index % 3 == 0) return $"conv_up{index / 3}.{suffix}";
            return null;
        };
    }

    /// <summary>Features, growth, blocks, upsamplings and pixel-unshuffle from the BasicSR-named shapes.</summary>
    internal static RrdbNetConfig DetectConfig(string path, IReadOnlyDictionary<string, TensorInfo> mapped)
    {
        TensorInfo Need(string name) => mapped.TryGetValue(name, out var t) && t.Rank == 4
            ? t : throw new InvalidModelFileException(path, $"RRDBNet upscaler without a 4-d '{name}' tensor");
        var first = Need("conv_first.weight");
        var last = Need("conv_last.weight");
        var growth = Need("body.0.rdb1.conv1.weight");
        int blocks = 0;
        while (mapped.ContainsKey($"body.{blocks}.rdb1.conv1.weight")) blocks++;
        int upsamplings = 0;
        while (mapped.ContainsKey($"conv_up{upsamplings + 1}.weight")) upsamplings++;

        int outChannels = (int)last.Shape[0];
        int firstInputs = (int)first.Shape[1];
        int unshuffle = firstInputs == outChannels ? 1 : firstInputs == outChannels * 4 ? 2 : firstInputs == outChannels * 16 ? 4 : 0;
        if (unshuffle == 0)
            throw new InvalidModelFileException(path, $"RRDBNet first conv takes {firstInputs} channels for a {outChannels}-channel image (expected {outChannels}, or x4/x16 for pixel-unshuffle)");
        var config = new RrdbNetConfig(outChannels, outChannels, (int)first.Shape[0], (int)growth.Shape[0], blocks, upsamplings, unshuffle);
        if (config.Scale < 1 || (1 << upsamplings) % unshuffle != 0)
            throw new InvalidModelFileException(path, $"RRDBNet with {upsamplings} x2 stages and pixel-unshuffle {unshuffle} has no integer scale");
        return config;
    }
}

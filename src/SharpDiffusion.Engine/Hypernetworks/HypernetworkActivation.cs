using TorchSharp;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Hypernetworks;

/// <summary>
/// A1111's hypernetwork activation table: linear (none), relu, leakyrelu (0.01), elu, <b>swish = Hardswish</b>, tanh,
/// sigmoid, plus every lower-cased <c>torch.nn.modules.activation</c> class that works with default arguments
/// (silu, mish, gelu, softsign, softplus, relu6, hardtanh, ...). All are parameterless except prelu, whose weight
/// is loaded from the file.
/// </summary>
public static class HypernetworkActivation
{
    private static readonly Dictionary<string, Func<Tensor, Tensor>> Functions = new(StringComparer.Ordinal)
    {
        ["relu"] = x => nn.functional.relu(x),
        ["leakyrelu"] = x => nn.functional.leaky_relu(x, 0.01),
        ["elu"] = x => nn.functional.elu(x, 1.0),
        ["swish"] = x => nn.functional.hardswish(x), // A1111 maps "swish" to torch.nn.Hardswish, not SiLU
        ["hardswish"] = x => nn.functional.hardswish(x),
        ["tanh"] = x => x.tanh(),
        ["sigmoid"] = x => x.sigmoid(),
        ["silu"] = x => nn.functional.silu(x),
        ["mish"] = x => nn.functional.mish(x),
        ["gelu"] = x => nn.functional.gelu(x),
        ["softsign"] = x => x / (x.abs() + 1),
        ["softplus"] = x => nn.functional.softplus(x, 1, 20),
        ["relu6"] = x => nn.functional.relu6(x),
        ["hardtanh"] = x => x.clamp(-1.0, 1.0),
        ["hardsigmoid"] = x => nn.functional.hardsigmoid(x),
        ["celu"] = x => nn.functional.celu(x, 1.0),
        ["selu"] = x => nn.functional.selu(x),
        ["logsigmoid"] = x => nn.functional.logsigmoid(x),
        ["tanhshrink"] = x => x - x.tanh(),
        ["softshrink"] = x => nn.functional.softshrink(x, 0.5),
        ["hardshrink"] = x => nn.functional.hardshrink(x, 0.5),
        // RReLU at inference: a leaky ReLU with slope (lower + upper) / 2 = (1/8 + 1/3) / 2.
        ["rrelu"] = x => nn.functional.leaky_relu(x, (1.0 / 8 + 1.0 / 3) / 2),
        // torch's dim=None softmax family picks dim 0 for 0-, 1- and 3-D inputs, else 1 (legacy rule).
        ["softmax"] = x => x.softmax(LegacySoftmaxDim(x)),
        ["softmin"] = x => (-x).softmax(LegacySoftmaxDim(x)),
        ["logsoftmax"] = x => x.log_softmax(LegacySoftmaxDim(x)),
        ["softmax2d"] = x => x.softmax(-3),
    };

    /// <summary>Names A1111 accepts; null and "linear" mean no activation.</summary>
    public static bool IsSupported(string? name) => name is null or "linear" or "prelu" || Functions.ContainsKey(name);

    /// <summary>True when the name adds a module to the Sequential (not null / "linear").</summary>
    public static bool AddsLayer(string? name) => name is not null and not "linear";

    /// <summary>The module for <paramref name="name"/> (prelu: one weight, initialised 0.25, overwritten on load).</summary>
    public static nn.Module<Tensor, Tensor> Create(string name)
    {
        if (name == "prelu") return nn.PReLU(1, 0.25);
        if (!Functions.TryGetValue(name, out var function)) throw new ArgumentException($"hypernetwork uses an unsupported activation function: {name}", nameof(name));
        return new FunctionModule(name, function);
    }

    private static long LegacySoftmaxDim(Tensor x) => x.dim() is 0 or 1 or 3 ? 0 : 1;

    private sealed class FunctionModule(string name, Func<Tensor, Tensor> function) : nn.Module<Tensor, Tensor>(name)
    {
        public override Tensor forward(Tensor input) => function(input);
    }
}

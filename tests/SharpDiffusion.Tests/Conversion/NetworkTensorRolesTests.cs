using SharpDiffusion.Conversion;
using SharpDiffusion.Inspection;

namespace SharpDiffusion.Tests.Conversion;

/// <summary>Inspection (<see cref="LoraKeyParser"/>) and generation (<see cref="NetworkTensorRoles.TrySplit"/>) split every key alike.</summary>
public class NetworkTensorRolesTests
{
    public static TheoryData<string> TableSuffixes()
    {
        var data = new TheoryData<string>();
        foreach (var entry in NetworkTensorRoles.Suffixes) data.Add(entry.Suffix);
        return data;
    }

    [Theory]
    [MemberData(nameof(TableSuffixes))]
    public void Inspection_and_generation_split_every_suffix_into_the_same_module(string suffix)
    {
        var entry = Assert.Single(NetworkTensorRoles.Suffixes, s => s.Suffix == suffix);
        foreach (var module in new[] { "lora_unet_down_blocks_0_attentions_0_proj_in", "unet.down_blocks.0.attentions.0.proj_in" })
        {
            string key = module + suffix;
            Assert.True(NetworkTensorRoles.TrySplit(key, out var splitModule, out var role), key);
            Assert.Equal((module, entry.Role), (splitModule, role));
            if (suffix == NetworkTensorRoles.Ia3WeightSuffix)
            {
                // A plain ".weight" is only IA3 beside ".on_input"; inspection pairs them itself.
                Assert.False(LoraKeyParser.TryParse(key, out _), key);
                continue;
            }
            Assert.True(LoraKeyParser.TryParse(key, out var parsed), key);
            Assert.Equal((module, suffix), (parsed.Module, parsed.Suffix));
            if (entry.Style != null) Assert.Equal(entry.Style, parsed.Style);
        }
    }

    [Theory]
    [InlineData(".lora_magnitude_vector")]
    [InlineData(".lora_magnitude_vector.weight")]
    public void Peft_dora_magnitude_is_dora_to_both(string suffix)
    {
        string key = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k" + suffix;
        Assert.True(LoraKeyParser.TryParse(key, out var parsed));
        Assert.Equal((LoraPart.DoraScale, "peft"), (parsed.Part, parsed.Style));
        Assert.True(NetworkTensorRoles.TrySplit(key, out _, out var role));
        Assert.Equal(NetworkTensorRoles.DoraMagnitude, role);
        var kind = NetworkTensorRoles.Classify([NetworkTensorRoles.Up, NetworkTensorRoles.Down, role]);
        Assert.Equal(NetworkAlgorithm.LoRA, kind!.Value.Algorithm);
        Assert.Equal([NetworkTensorRoles.Up, NetworkTensorRoles.Down, NetworkTensorRoles.DoraMagnitude], kind.Value.Roles);
    }
}

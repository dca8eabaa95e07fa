using SharpDiffusion.Workshop;

namespace SharpDiffusion.Tests.Workshop;

public sealed class BlockWeightsTests
{
    [Theory]
    [InlineData("model.diffusion_model.time_embed.0.weight", "IN00")]
    [InlineData("model.diffusion_model.input_blocks.0.0.weight", "IN00")]
    [InlineData("model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight", "IN04")]
    [InlineData("model.diffusion_model.input_blocks.11.0.out_layers.3.bias", "IN11")]
    [InlineData("model.diffusion_model.middle_block.2.in_layers.0.weight", "M00")]
    [InlineData("model.diffusion_model.output_blocks.0.0.skip_connection.weight", "OUT00")]
    [InlineData("model.diffusion_model.output_blocks.8.1.proj_out.weight", "OUT08")]
    [InlineData("model.diffusion_model.output_blocks.11.1.transformer_blocks.0.attn1.to_out.0.weight", "OUT11")]
    [InlineData("model.diffusion_model.out.0.weight", "OUT11")]
    [InlineData("model.diffusion_model.out.2.bias", "OUT11")]
    [InlineData("model.diffusion_model.label_emb.0.0.weight", "BASE")]
    [InlineData("cond_stage_model.transformer.text_model.encoder.layers.0.self_attn.out_proj.weight", "BASE")]
    [InlineData("conditioner.embedders.1.model.transformer.resblocks.0.attn.out_proj.weight", "BASE")]
    [InlineData("first_stage_model.decoder.mid.attn_1.proj_out.weight", "BASE")]
    [InlineData("betas", "BASE")]
    public void Keys_map_to_the_merge_block_weighted_blocks(string key, string block) =>
        Assert.Equal(block, BlockWeights.BlockOf(key));

    [Fact]
    public void Twenty_six_values_start_with_BASE_and_twenty_five_take_BASE_from_the_multiplier()
    {
        var values = Enumerable.Range(0, 26).Select(i => i / 100.0).ToArray();
        var full = BlockWeights.Parse(string.Join(",", values.Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture))), 0.9);
        Assert.Equal(0.0, full["BASE"]);
        Assert.Equal(0.01, full["IN00"]);
        Assert.Equal(0.13, full["M00"]);
        Assert.Equal(0.25, full["OUT11"]);

        var short25 = BlockWeights.Parse(string.Join(", ", values.Skip(1).Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture))), 0.9);
        Assert.Equal(0.9, short25["BASE"]);
        Assert.Equal(0.12, short25["IN11"]);
        Assert.Equal(0.14, short25["OUT00"]);
        Assert.Equal(0.9, short25.WeightFor("first_stage_model.encoder.conv_in.weight"));
        Assert.Equal(0.05, short25.WeightFor("model.diffusion_model.input_blocks.4.0.in_layers.2.weight"));
    }

    [Theory]
    [InlineData("0.5,0.5")]
    [InlineData("1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27")]
    [InlineData("0.5,x,0.5")]
    public void Wrong_lists_are_refused_with_a_reason(string text)
    {
        var e = Assert.Throws<FormatException>(() => BlockWeights.Parse(text, 0.5));
        Assert.Matches("26 values|not a number", e.Message);
    }
}

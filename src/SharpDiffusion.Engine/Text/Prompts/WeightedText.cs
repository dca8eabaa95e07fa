namespace SharpDiffusion.Engine.Text.Prompts;

/// <summary>One piece of a parsed prompt and its attention weight; <c>("BREAK", -1)</c> marks a chunk break.</summary>
public sealed record WeightedText(string Text, double Weight)
{
    /// <summary>A1111 treats only the exact pair ("BREAK", -1) as a break; inside brackets it becomes ordinary text.</summary>
    public bool IsBreak => Text == "BREAK" && Weight == -1;
}

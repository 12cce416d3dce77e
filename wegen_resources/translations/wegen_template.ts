<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1">
<context>
    <name></name>
    <message numerus="yes">
        <location filename="../../desktop/image_input.py" line="32"/>
        <source>ImageInput</source>
        <comment>Cannot use “{0}”: it is {1} MB, more than the limit of {2} MB. Scale it down or save it in a compressed format, then try again.</comment>
        <translation type="unfinished">
            <numerusform></numerusform>
        </translation>
    </message>
    <message>
        <location filename="../../desktop/main.py" line="93"/>
        <source>Main</source>
        <comment>WeGen cannot start</comment>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>AboutDialog</name>
    <message>
        <location filename="../../desktop/about_dialog.py" line="30"/>
        <source>About WeGen</source>
        <extracomment>(component, licence) for what the application ships.</extracomment>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/about_dialog.py" line="35"/>
        <source>&lt;h2&gt;WeGen {0}&lt;/h2&gt;&lt;p&gt;Create, refine, restore and restyle images by chatting, on your own computer. Nothing leaves this machine.&lt;/p&gt;</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/about_dialog.py" line="43"/>
        <source>Model: {0}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/about_dialog.py" line="48"/>
        <source>Licences</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/about_dialog.py" line="54"/>
        <source>Images made with WeGen carry metadata that marks them as AI-generated (IPTC digital source type).</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>AttachmentChip</name>
    <message>
        <location filename="../../desktop/composer.py" line="108"/>
        <source>Image</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="109"/>
        <source>Reference subject</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="110"/>
        <source>Condition (edges/layout)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="111"/>
        <source>Style</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="112"/>
        <source>Image to restore</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="118"/>
        <source>What this image is for</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="123"/>
        <source>Remove this attachment</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>ChatView</name>
    <message>
        <location filename="../../desktop/chat_view.py" line="263"/>
        <source>&lt;h3&gt;Start by describing an image&lt;/h3&gt;&lt;p&gt;The loaded model, &lt;b&gt;{0}&lt;/b&gt;, is small and has only learnt simple coloured shapes, so that the app works without a download. Try &lt;i&gt;“draw a small blue circle in the centre”&lt;/i&gt; or &lt;i&gt;“draw a large red star at the top left”&lt;/i&gt;, then ask &lt;i&gt;“How many objects are there?”&lt;/i&gt; Edits and the other tasks work only now and then with it: its model card has the scores.&lt;/p&gt;&lt;p&gt;For photos and everything else, load the official WeGen weights in Settings.&lt;/p&gt;</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="274"/>
        <source>&lt;h3&gt;Start by describing an image&lt;/h3&gt;&lt;p&gt;Try &lt;i&gt;“a red fox in the snow, watercolour”&lt;/i&gt;, then refine it by chatting: &lt;i&gt;“now make it night, keep the fox”&lt;/i&gt;.&lt;/p&gt;&lt;p&gt;Drop or paste a photo to restore it, restyle it, or ask about it. The buttons above the message box set what WeGen should do.&lt;/p&gt;</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>Composer</name>
    <message>
        <location filename="../../desktop/composer.py" line="161"/>
        <source>Generate</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="161"/>
        <source>Draw a new image from the text</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="162"/>
        <source>Edit this image</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="162"/>
        <source>Change the last image as you say</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="163"/>
        <source>Restore</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="163"/>
        <source>Repair the attached photo</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="165"/>
        <source>Style transfer</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="166"/>
        <source>Paint the first image in the style of the second</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="168"/>
        <source>Describe</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="168"/>
        <source>Answer about the images, no drawing</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="169"/>
        <source>Variations</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="169"/>
        <source>Another take on the last image</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="206"/>
        <source>Describe an image, ask for a change, or ask about an attached photo… (Ctrl+Enter to send)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="217"/>
        <source>Send</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="219"/>
        <location filename="../../desktop/composer.py" line="448"/>
        <source>Send (Ctrl+Enter)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="222"/>
        <source>Cancel</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="223"/>
        <source>Stop the running reply (Esc)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="227"/>
        <source>Attach…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="229"/>
        <source>Attach images (Ctrl+Shift+O); you can also drop or paste them</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="239"/>
        <source>Seed</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="243"/>
        <source>The random seed. Lock it to repeat a result.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="246"/>
        <source>Lock</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="248"/>
        <source>Keep this seed for the next messages</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="251"/>
        <source>New</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="252"/>
        <source>Pick a new random seed</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="256"/>
        <source>Steps</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="260"/>
        <source>Denoising steps: more is slower and finer</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="262"/>
        <source>Guidance</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="268"/>
        <source>How strongly the decoder follows the image tokens (1 = off)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="271"/>
        <source>Embedding CFG</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="273"/>
        <source>Guidance of the language model&apos;s image tokens (1 = off)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="276"/>
        <source>Redraw</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="283"/>
        <source>How much of the image being worked on to redraw: 1 draws it anew, lower keeps more of it (its layout and colours)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="288"/>
        <source>Size</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="290"/>
        <source>Output size in pixels (the sizes this model allows)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="292"/>
        <source>Rewrite prompt (PSR)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="294"/>
        <source>Let the model expand a brief request into a detailed description first</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="325"/>
        <source>Task: automatic</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="358"/>
        <source>Attach images</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="360"/>
        <source>Images ({0})</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="368"/>
        <source>pasted image</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/composer.py" line="398"/>
        <source>model default</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>ConversationList</name>
    <message>
        <location filename="../../desktop/conversation_list.py" line="35"/>
        <source>New conversation</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/conversation_list.py" line="36"/>
        <source>Start a new conversation (Ctrl+N)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/conversation_list.py" line="42"/>
        <source>Search conversations (Ctrl+F)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/conversation_list.py" line="59"/>
        <location filename="../../desktop/conversation_list.py" line="81"/>
        <source>No conversations yet</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/conversation_list.py" line="79"/>
        <source>No conversation matches “{0}”</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/conversation_list.py" line="118"/>
        <source>Rename…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/conversation_list.py" line="119"/>
        <source>Delete…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/conversation_list.py" line="128"/>
        <source>Rename conversation</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/conversation_list.py" line="128"/>
        <source>Title:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/conversation_list.py" line="141"/>
        <source>Delete conversation</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/conversation_list.py" line="142"/>
        <source>Delete “{0}” and all its images? This cannot be undone.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>ImageCanvas</name>
    <message>
        <location filename="../../desktop/canvas.py" line="53"/>
        <source>Your images appear here.

Describe a picture below and press Ctrl+Enter,
or drop a photo on the window to restore or restyle it.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/canvas.py" line="223"/>
        <source>Before</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/canvas.py" line="225"/>
        <source>After</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/canvas.py" line="231"/>
        <source>Preview</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>MainWindow</name>
    <message>
        <location filename="../../desktop/window.py" line="57"/>
        <location filename="../../desktop/window.py" line="256"/>
        <source>WeGen</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="136"/>
        <source>Fit</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="136"/>
        <source>Fit the image to the view (Ctrl+0)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="139"/>
        <source>1:1</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="139"/>
        <source>Actual pixels (Ctrl+1)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="141"/>
        <source>Zoom out (Ctrl+-)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="142"/>
        <source>Zoom in (Ctrl++)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="147"/>
        <location filename="../../desktop/window.py" line="478"/>
        <source>Before / after</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="148"/>
        <source>Compare with the image it was made from (B)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="155"/>
        <source>Export image…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="155"/>
        <source>Save this image (Ctrl+E)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="176"/>
        <source>&amp;File</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="179"/>
        <source>&amp;New conversation</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="183"/>
        <source>&amp;Open image…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="184"/>
        <source>&amp;Attach images…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="185"/>
        <source>Paste image</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="187"/>
        <source>&amp;Export image…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="189"/>
        <source>Export &amp;conversation…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="193"/>
        <source>&amp;Settings…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="195"/>
        <source>Settings…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="196"/>
        <source>&amp;Quit</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="198"/>
        <source>&amp;Conversation</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="199"/>
        <source>&amp;Rename…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="200"/>
        <source>&amp;Delete…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="201"/>
        <source>&amp;Search</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="203"/>
        <source>&amp;View</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="204"/>
        <source>&amp;Fit</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="205"/>
        <source>&amp;Actual size</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="206"/>
        <source>Zoom &amp;in</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="207"/>
        <source>Zoom &amp;out</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="208"/>
        <source>&amp;Before / after</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="210"/>
        <source>&amp;Generate</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="211"/>
        <source>&amp;Send</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="212"/>
        <source>&amp;Cancel</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="215"/>
        <source>&amp;Help</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="216"/>
        <source>&amp;Keyboard shortcuts</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="217"/>
        <source>&amp;About WeGen</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="272"/>
        <source>Denoising…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="295"/>
        <source>Model: {0} · {1} · {2}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="303"/>
        <source>No model is loaded.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="311"/>
        <source>No model</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="313"/>
        <source>No model is loaded: see the message at the top of the window</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="317"/>
        <source>Loading the model from {0}…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="319"/>
        <source>Loading model…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="346"/>
        <source>Nothing is running.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="353"/>
        <source>Cannot read {0}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="362"/>
        <source>seed {0}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="370"/>
        <location filename="../../desktop/window.py" line="471"/>
        <source>Open image</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="372"/>
        <source>Images (*.png *.jpg *.jpeg *.webp)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="390"/>
        <source>“{0}” has no WeGen or A1111 settings in it. Attach it to a message to use it.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="397"/>
        <source>Restored the prompt and settings of “{0}”. Press Send to make it again.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="411"/>
        <location filename="../../desktop/window.py" line="474"/>
        <source>Export image</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="413"/>
        <source>PNG image (*.png)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="419"/>
        <location filename="../../desktop/window.py" line="438"/>
        <source>Export failed</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="421"/>
        <location filename="../../desktop/window.py" line="440"/>
        <source>Saved {0}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="426"/>
        <source>Open a conversation to export it.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="430"/>
        <location filename="../../desktop/window.py" line="475"/>
        <source>Export conversation</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="432"/>
        <source>Zip archive (*.zip)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="466"/>
        <source>Send</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="467"/>
        <source>Cancel the running reply</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="468"/>
        <source>New conversation</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="469"/>
        <source>Search</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="470"/>
        <source>Rename conversation</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="472"/>
        <source>Attach images</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="473"/>
        <source>Paste an image</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="476"/>
        <source>Fit / actual size</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="477"/>
        <source>Zoom</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="486"/>
        <source>Keyboard shortcuts</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="511"/>
        <source>Only files on this computer can be attached: {0}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="526"/>
        <source>Quit WeGen</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/window.py" line="528"/>
        <source>A reply is still being made. Quit anyway? Finished images are kept; the unfinished reply can be retried next time.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>QueuePanel</name>
    <message>
        <location filename="../../desktop/queue_panel.py" line="30"/>
        <source>Run sooner</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/queue_panel.py" line="31"/>
        <source>Run later</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/queue_panel.py" line="32"/>
        <source>Cancel this request</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/queue_panel.py" line="56"/>
        <source>▶ {0}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/queue_panel.py" line="68"/>
        <source>Queue: {0} waiting</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/queue_panel.py" line="70"/>
        <source>Queue: empty</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>SettingsDialog</name>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="32"/>
        <source>Settings</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="37"/>
        <source>Model</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="39"/>
        <source>Bundled small model (wegen-tiny)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="41"/>
        <source>Another model folder (official WeGen checkpoint or a converted folder)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="50"/>
        <source>Folder with config.json, or wegen_mllm_ckpt</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="52"/>
        <source>Browse…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="55"/>
        <source>Verify</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="73"/>
        <source>Runtime</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="79"/>
        <source>Automatic (GPU if there is one)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="80"/>
        <source>CPU</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="81"/>
        <source>NVIDIA GPU (CUDA)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="82"/>
        <source>Ascend NPU</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="83"/>
        <source>Apple GPU (MPS)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="86"/>
        <source>Device</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="91"/>
        <source>Automatic</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="92"/>
        <source>32-bit float</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="93"/>
        <source>16-bit float</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="94"/>
        <source>bfloat16</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="97"/>
        <source>Precision</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="102"/>
        <source>PyTorch</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="103"/>
        <source>PyTorch, compiled (faster after a slow first run)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="106"/>
        <source>Backend</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="111"/>
        <source>Normal</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="112"/>
        <source>Low memory (parts of the model wait on the CPU)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="115"/>
        <source>Memory</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="118"/>
        <source>Appearance</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="124"/>
        <source>Follow the system</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="125"/>
        <source>Light</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="126"/>
        <source>Dark</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="129"/>
        <source>Theme</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="154"/>
        <source>Choose a model folder</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="164"/>
        <source>Checking {0}…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="173"/>
        <source>This folder cannot be used:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="177"/>
        <source>✓ The model folder is complete.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>TurnWidget</name>
    <message>
        <location filename="../../desktop/chat_view.py" line="82"/>
        <source>You</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="82"/>
        <source>WeGen</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="89"/>
        <source>Cancel</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="90"/>
        <source>Stop this reply (Esc)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="93"/>
        <source>Retry</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="142"/>
        <source>waiting in the queue</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="143"/>
        <source>working…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="144"/>
        <source>cancelled</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="145"/>
        <source>failed</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="146"/>
        <source>interrupted: WeGen closed before this reply finished</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="149"/>
        <source>task: {0}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="171"/>
        <source>Rewritten prompt: {0}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="176"/>
        <source>Image tokens %v / %m</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="178"/>
        <source>Denoising step %v / %m</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="187"/>
        <source>Live preview</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>widget</name>
    <message>
        <location filename="../../desktop/chat_view.py" line="221"/>
        <source>image</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="222"/>
        <source>reference</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="223"/>
        <source>condition</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="224"/>
        <source>style</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="225"/>
        <source>to restore</source>
        <translation type="unfinished"></translation>
    </message>
</context>
</TS>
